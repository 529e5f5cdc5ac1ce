using Vpn.Cli.Client;

namespace Vpn.Cli.Tests.Client;

/// <summary>The client's text/event-stream reading, on the stream entry writes (docs/api-v1.md, "Session events").</summary>
public class EventStreamTests
{
    private static List<ClientCommands.ServerEvent> Feed(ClientCommands.EventStream stream, string text) =>
        [.. text.Split('\n').Select(stream.Feed).OfType<ClientCommands.ServerEvent>()];

    [Fact]
    public void Events_comments_retry_and_the_last_id()
    {
        var stream = new ClientCommands.EventStream();
        var events = Feed(stream, """
            retry: 2500

            id: s1/n1
            event: current
            data: {"session_id":"s1","kind":"current","reason":null,"node":{"name":"fra-1","region":"eu-west"}}

            : keepalive

            id: s1/end
            event: superseded
            data: {"session_id":"s1","kind":"superseded","reason":"replaced"}


            """);

        Assert.Equal(["current", "superseded"], events.Select(e => e.Event));
        Assert.Equal("fra-1", events[0].Data!["node"]!["name"]!.GetValue<string>());
        Assert.Equal("replaced", events[1].Data!["reason"]!.GetValue<string>());
        Assert.Equal("s1/end", stream.LastId);
        Assert.Equal(TimeSpan.FromMilliseconds(2500), stream.Retry);
    }

    [Fact]
    public void Multi_line_data_is_joined_and_text_that_is_not_json_is_kept()
    {
        var stream = new ClientCommands.EventStream();
        var events = Feed(stream, "data: {\"a\":\ndata: 1}\n\ndata:plain\n\n");

        Assert.Equal(1, events[0].Data!["a"]!.GetValue<int>());
        Assert.Equal("message", events[0].Event);
        Assert.Equal("plain", events[1].Data!.GetValue<string>());
        Assert.Null(stream.LastId);
    }

    [Fact]
    public void An_id_without_data_still_moves_the_last_id_and_a_nul_id_is_ignored()
    {
        var stream = new ClientCommands.EventStream();
        Assert.Empty(Feed(stream, "id: a/b\n\nid: x\0y\n\n"));
        Assert.Equal("a/b", stream.LastId);
    }
}
