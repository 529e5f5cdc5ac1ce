using Vpn.Cli.Output;

namespace Vpn.Cli.Client;

public static partial class ClientCommands
{
    private const int MaxResumes = 10;

    /// <summary>
    /// vpnctl client events: follows GET /v1/sessions/current/events as an app would — one line per event (NDJSON of the
    /// events' data with --json), until the session is superseded or ended (exit 0). A stream that drops is resumed with
    /// Last-Event-ID after the server's retry interval, so an event missed meanwhile still arrives.
    /// </summary>
    private static Command CreateEvents(GlobalOptions options, CliContext context, Func<Invocation, string> stateDir) =>
        new Command("events", "follow the session's events (superseded, ended, moved) until it ends; resumes a dropped stream").Handle(options, context, async run =>
        {
            var state = ClientState.Load(stateDir(run));
            using var entry = SignedIn(run, state);
            // The session this client holds, as the first Last-Event-ID: a session that ended before the stream opened is
            // told at once (its terminal event) instead of answering 404 no_active_session.
            var stream = new EventStream(state.Session?.Id);
            for (var resumes = 0; ; resumes++)
            {
                var headers = stream.LastId is { } id ? new Dictionary<string, string> { ["Last-Event-ID"] = id } : null;
                ServerEvent? terminal = null;
                (HttpStatusCode Status, bool Ended) read;
                try
                {
                    read = await entry.ReadLinesAsync("/v1/sessions/current/events", headers, line =>
                    {
                        if (stream.Feed(line) is { } received)
                        {
                            Show(run, received);
                            terminal = received.Event is "superseded" or "ended" ? received : null;
                        }
                        return terminal is null;
                    }, run.CancellationToken);
                }
                catch (ApiProblemException problem)
                {
                    throw Explained(problem);
                }
                if (terminal is not null || read.Status == HttpStatusCode.NoContent)
                {
                    return ExitCodes.Ok;
                }
                if (resumes == MaxResumes)
                {
                    throw new CliException(ExitCodes.Unavailable, $"the event stream dropped {MaxResumes + 1} times: giving up");
                }
                await Task.Delay(stream.Retry, run.CancellationToken);
            }
        });

    private static void Show(Invocation run, ServerEvent received)
    {
        var data = received.Data;
        run.Print(data, w =>
        {
            var node = data?["node"];
            var reason = data.Str("reason");
            w.WriteLine(received.Event switch
            {
                "current" => $"session {data.Str("session_id")} active on {node.Str("name")} ({node.Str("region")})",
                "moved" => $"moved to {node.Str("name")} ({node.Str("region")}, {reason}): run 'vpnctl client reconnect' for the new server's config",
                "superseded" => "superseded: a start on another device took this account's session (one session per account)",
                "ended" when reason == "quota_exceeded" => "ended: quota_exceeded: the plan's data for this billing period is used up ('vpnctl client status')",
                "ended" => $"ended: {reason}",
                var other => $"{other}: {data?.ToJsonString()}",
            });
        });
    }

    /// <summary>One dispatched Server-Sent Event: its type and its data as JSON.</summary>
    internal sealed record ServerEvent(string Event, string? Id, JsonNode? Data);

    /// <summary>The text/event-stream format (WHATWG HTML, 9.2): fields by line, an empty line dispatches, ':' lines are comments.</summary>
    internal sealed class EventStream(string? lastId = null)
    {
        private readonly StringBuilder _data = new();
        private string _event = "message";
        private string? _id;

        /// <summary>The last event id received (or the one it started from): what a resumed stream sends as Last-Event-ID.</summary>
        public string? LastId { get; private set; } = lastId;

        /// <summary>How long to wait before resuming (the server's retry field; 2 s by default).</summary>
        public TimeSpan Retry { get; private set; } = TimeSpan.FromSeconds(2);

        public ServerEvent? Feed(string line)
        {
            if (line.Length == 0)
            {
                return Dispatch();
            }
            if (line[0] == ':')
            {
                return null;
            }
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var (field, value) = colon < 0 ? (line, "") : (line[..colon], line[(colon + 1)..]);
            value = value.StartsWith(' ') ? value[1..] : value;
            switch (field)
            {
                case "event":
                    _event = value;
                    break;
                case "data":
                    _data.Append(value).Append('\n');
                    break;
                case "id" when !value.Contains('\0', StringComparison.Ordinal):
                    _id = value;
                    break;
                case "retry" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var ms):
                    Retry = TimeSpan.FromMilliseconds(Math.Clamp(ms, 100, 60_000));
                    break;
            }
            return null;
        }

        private ServerEvent? Dispatch()
        {
            LastId = _id ?? LastId;
            if (_data.Length == 0)
            {
                _event = "message";
                return null;
            }
            var text = _data.ToString(0, _data.Length - 1);
            _data.Clear();
            JsonNode? data;
            try
            {
                data = JsonNode.Parse(text);
            }
            catch (System.Text.Json.JsonException)
            {
                data = JsonValue.Create(text);
            }
            var received = new ServerEvent(_event, LastId, data);
            _event = "message";
            return received;
        }
    }
}
