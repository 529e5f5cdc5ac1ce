using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Vpn.Core.EntryApi;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>The desired-peer fetch and the heartbeat against a real HTTP server, over TCP and over a unix socket.</summary>
public class EntryClientTests
{
    private static readonly Guid NodeId = Guid.Parse("0195a8c4-0000-7000-8000-0000000000aa");
    private static readonly string KeyA = WireGuardKey.Generate().ToBase64();
    private static readonly string KeyB = WireGuardKey.Generate().ToBase64();
    private static readonly Guid SessionA = Guid.NewGuid();
    private static readonly Guid SessionB = Guid.NewGuid();

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string Body(params object[] peers) =>
        JsonSerializer.Serialize(new { node_id = NodeId, generated_at = "2030-01-02T03:04:05Z", peers });

    private static object Peer(Guid session, string key, string? address, string state) =>
        new { session_id = session, public_key = key, address, state };

    /// <summary>A peer as a dual-stack entry writes it (address_v6 present, null for sessions without one).</summary>
    private static object Peer6(Guid session, string key, string? address, string? addressV6, string state) =>
        new { session_id = session, public_key = key, address, address_v6 = addressV6, state };

    private static readonly string GoodBody = Body(Peer(SessionA, KeyA, "10.64.0.2/32", "active"), Peer(SessionB, KeyB, null, "provisioning"));

    private static CoreOptions Options(Uri entry) => new() { EntryUrl = entry, NodeId = NodeId, AdminToken = "s3cret-admin" };

    [Fact]
    public async Task FetchAsync_OverUnixSocket_ReadsTheDesiredSet()
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(200, GoodBody);
        using var client = new EntryClient(Options(entry.Url));

        var snapshot = await client.FetchAsync(Token);

        Assert.Equal(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero), snapshot.GeneratedAt);
        Assert.Equal(
            [
                new DesiredSession(SessionA, WireGuardKey.ParseBase64(KeyA), IPAddress.Parse("10.64.0.2"), DesiredSessionState.Active),
                new DesiredSession(SessionB, WireGuardKey.ParseBase64(KeyB), null, DesiredSessionState.Provisioning),
            ],
            snapshot.Sessions);
        var request = Assert.Single(entry.Requests);
        Assert.Equal(("GET", $"/v1/internal/nodes/{NodeId}/peers", "s3cret-admin"), (request.Method, request.Path, request.Token));
    }

    [Fact]
    public async Task FetchAsync_DualStackAnswer_ReadsIpv6WhereGivenAndNullElsewhere()
    {
        var sessionC = Guid.NewGuid();
        var keyC = WireGuardKey.Generate().ToBase64();
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(200, Body(
            Peer6(SessionA, KeyA, "10.64.0.2/32", "fd64:6400::2/128", "active"),
            Peer6(SessionB, KeyB, "10.64.0.3/32", null, "active"),
            Peer6(sessionC, keyC, null, null, "provisioning")));
        using var client = new EntryClient(Options(entry.Url));

        var snapshot = await client.FetchAsync(Token);

        Assert.Equal(
            [
                new DesiredSession(SessionA, WireGuardKey.ParseBase64(KeyA), IPAddress.Parse("10.64.0.2"), DesiredSessionState.Active,
                    IPAddress.Parse("fd64:6400::2")),
                new DesiredSession(SessionB, WireGuardKey.ParseBase64(KeyB), IPAddress.Parse("10.64.0.3"), DesiredSessionState.Active, null),
                new DesiredSession(sessionC, WireGuardKey.ParseBase64(keyC), null, DesiredSessionState.Provisioning, null),
            ],
            snapshot.Sessions);
    }

    [Fact]
    public async Task FetchAsync_AnswerWithoutAddressV6Field_Ipv6IsNull()
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(200, GoodBody);
        using var client = new EntryClient(Options(entry.Url));

        var snapshot = await client.FetchAsync(Token);

        Assert.All(snapshot.Sessions, s => Assert.Null(s.Address6));
    }

    [Fact]
    public async Task FetchAsync_ClaimSeqGiven_CarriedPerSessionAndZeroWhereMissing()
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(200, Body(
            new { session_id = SessionA, public_key = KeyA, address = "10.64.0.2/32", state = "active", claim_seq = 9_000_000_000L },
            Peer(SessionB, KeyB, null, "provisioning")));
        using var client = new EntryClient(Options(entry.Url));

        var snapshot = await client.FetchAsync(Token);

        Assert.Equal(new[] { 9_000_000_000UL, 0UL }, snapshot.Sessions.Select(s => s.ClaimSeq));
    }

    [Fact]
    public async Task FetchAsync_UsageGiven_CarriedPerSessionAndNullWhereMissing()
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(200, Body(
            new { session_id = SessionA, public_key = KeyA, address = "10.64.0.2/32", state = "active", usage_generation = 77, usage_rx_bytes = 5_000_000_000L, usage_tx_bytes = 3 },
            Peer(SessionB, KeyB, null, "provisioning")));
        using var client = new EntryClient(Options(entry.Url));

        var snapshot = await client.FetchAsync(Token);

        Assert.Equal(new Vpn.Core.Usage.SessionUsage(snapshot.Sessions[0].SessionId, 77, 5_000_000_000L, 3), snapshot.Sessions[0].Usage);
        Assert.Null(snapshot.Sessions[1].Usage);
    }

    [Fact]
    public async Task PostUsageAsync_PostsTheBatchAsTheContractSays()
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(204, "");
        using var client = new EntryClient(Options(entry.Url));
        var session = Guid.Parse("0195a8c4-0000-7000-8000-0000000000b1");

        var status = await client.PostUsageAsync([new Vpn.Core.Usage.SessionUsage(session, 9_007_199_254_740_993L, 10, 20)], Token);

        Assert.Equal(HttpStatusCode.NoContent, status);
        var request = Assert.Single(entry.Requests);
        Assert.Equal(("POST", "/v1/internal/nodes/0195a8c4-0000-7000-8000-0000000000aa/usage", "s3cret-admin"), (request.Method, request.Path, request.Token));
        Assert.Equal("{\"sessions\":[{\"session_id\":\"0195a8c4-0000-7000-8000-0000000000b1\",\"generation\":9007199254740993,\"rx_bytes\":10,\"tx_bytes\":20}]}",
            request.Body);
    }

    [Fact]
    public async Task FetchAsync_OverTcp_ReadsTheDesiredSet()
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: false);
        entry.Respond(200, Body());
        using var client = new EntryClient(Options(entry.Url));

        var snapshot = await client.FetchAsync(Token);

        Assert.Empty(snapshot.Sessions);
        Assert.Equal("s3cret-admin", Assert.Single(entry.Requests).Token);
    }

    [Theory]
    [InlineData(404)]
    [InlineData(401)]
    [InlineData(500)]
    [InlineData(204)]
    public async Task FetchAsync_NotOk_ThrowsUnavailable(int status)
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(status, status == 204 ? "" : GoodBody);
        using var client = new EntryClient(Options(entry.Url));

        var error = await Assert.ThrowsAsync<DesiredStateUnavailableException>(() => client.FetchAsync(Token));

        Assert.Contains(status.ToString(), error.Message);
    }

    public static TheoryData<string, string> InvalidBodies => new()
    {
        { "not json", "{\"node_id\": " },
        { "html", "<html>gateway timeout</html>" },
        { "null", "null" },
        { "no peers", JsonSerializer.Serialize(new { node_id = NodeId }) },
        { "other node", JsonSerializer.Serialize(new { node_id = Guid.NewGuid(), peers = Array.Empty<object>() }) },
        { "bad key", Body(Peer(SessionA, "not-a-key", "10.64.0.2/32", "active")) },
        { "zero key", Body(Peer(SessionA, new WireGuardKey().ToBase64(), "10.64.0.2/32", "active")) },
        { "unknown state", Body(Peer(SessionA, KeyA, "10.64.0.2/32", "terminated")) },
        { "active without address", Body(Peer(SessionA, KeyA, null, "active")) },
        { "network not host", Body(Peer(SessionA, KeyA, "10.64.0.0/24", "active")) },
        { "ipv6", Body(Peer(SessionA, KeyA, "fd00::2/128", "active")) },
        { "sloppy ipv4", Body(Peer(SessionA, KeyA, "10.64.2/32", "active")) },
        { "repeated session", Body(Peer(SessionA, KeyA, "10.64.0.2/32", "active"), Peer(SessionA, KeyB, "10.64.0.3/32", "active")) },
        { "null peer", "{\"node_id\":\"" + NodeId + "\",\"peers\":[null]}" },
        { "ipv6 network not host", Body(Peer6(SessionA, KeyA, "10.64.0.2/32", "fd64:6400::/64", "active")) },
        { "ipv4 as address_v6", Body(Peer6(SessionA, KeyA, "10.64.0.2/32", "10.64.0.2/32", "active")) },
        { "ipv4-mapped address_v6", Body(Peer6(SessionA, KeyA, "10.64.0.2/32", "::ffff:10.64.0.2/128", "active")) },
        { "non-canonical address_v6", Body(Peer6(SessionA, KeyA, "10.64.0.2/32", "FD64:6400:0::2/128", "active")) },
        { "zoned address_v6", Body(Peer6(SessionA, KeyA, "10.64.0.2/32", "fe80::2%1/128", "active")) },
        { "garbage address_v6", Body(Peer6(SessionA, KeyA, "10.64.0.2/32", "fd64:6400::2/128\nallowed_ip=::/0", "active")) },
        { "address_v6 without address", Body(Peer6(SessionA, KeyA, null, "fd64:6400::2/128", "provisioning")) },
        { "one bad address_v6 among good", Body(Peer6(SessionA, KeyA, "10.64.0.2/32", "fd64:6400::2/128", "active"),
            Peer6(SessionB, KeyB, "10.64.0.3/32", "fd64:6400::3/120", "active")) },
        { "negative claim_seq", Body(new { session_id = SessionA, public_key = KeyA, address = "10.64.0.2/32", state = "active", claim_seq = -1 }) },
        { "text claim_seq", Body(new { session_id = SessionA, public_key = KeyA, address = "10.64.0.2/32", state = "active", claim_seq = "1" }) },
        { "usage without generation", Body(new { session_id = SessionA, public_key = KeyA, address = "10.64.0.2/32", state = "active", usage_rx_bytes = 1, usage_tx_bytes = 1 }) },
        { "usage generation 0", Body(new { session_id = SessionA, public_key = KeyA, address = "10.64.0.2/32", state = "active", usage_generation = 0, usage_rx_bytes = 1, usage_tx_bytes = 1 }) },
        { "negative usage", Body(new { session_id = SessionA, public_key = KeyA, address = "10.64.0.2/32", state = "active", usage_generation = 5, usage_rx_bytes = -1, usage_tx_bytes = 1 }) },
        // A repeated name means two things to two parsers: the whole answer is refused, not read "last one wins".
        { "repeated node_id", "{\"node_id\":\"" + Guid.NewGuid() + "\"," + GoodBody[1..] },
        { "repeated peers", GoodBody[..^1] + ",\"peers\":[]}" },
        { "peer with two keys", GoodBody.Replace("\"public_key\":", "\"public_key\":\"" + KeyB + "\",\"public_key\":", StringComparison.Ordinal) },
        { "peer with two states", GoodBody.Replace("\"state\":\"active\"", "\"state\":\"active\",\"STATE\":\"provisioning\"", StringComparison.Ordinal) },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public async Task FetchAsync_InvalidAnswer_ThrowsUnavailableWithoutQuotingIt(string why, string body)
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(200, body);
        using var client = new EntryClient(Options(entry.Url));

        var error = await Assert.ThrowsAsync<DesiredStateUnavailableException>(() => client.FetchAsync(Token));

        Assert.DoesNotContain("gateway timeout", error.Message);
        Assert.DoesNotContain("s3cret", error.Message);
        Assert.False(string.IsNullOrEmpty(why));
    }

    [Fact]
    public async Task FetchAsync_NothingListening_ThrowsUnavailable()
    {
        using var client = new EntryClient(Options(new Uri($"unix:/tmp/{Guid.NewGuid():N}.sock")));

        var error = await Assert.ThrowsAsync<DesiredStateUnavailableException>(() => client.FetchAsync(Token));

        Assert.Contains("unreachable", error.Message);
    }

    [Fact]
    public async Task FetchAsync_EntryTooSlow_ThrowsUnavailableAfterTheTimeout()
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(200, GoodBody, delay: TimeSpan.FromSeconds(30));
        using var client = new EntryClient(Options(entry.Url), TimeSpan.FromMilliseconds(300));

        var error = await Assert.ThrowsAsync<DesiredStateUnavailableException>(() => client.FetchAsync(Token));

        Assert.Contains("in time", error.Message);
    }

    [Fact]
    public async Task PostHeartbeatAsync_OverUnixSocket_PostsNodeHealth()
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(204, "");
        using var client = new EntryClient(Options(entry.Url));

        var status = await client.PostHeartbeatAsync(true, 7, Token);

        Assert.Equal(HttpStatusCode.NoContent, status);
        var request = Assert.Single(entry.Requests);
        Assert.Equal(("POST", "/v1/internal/nodes/health", "s3cret-admin"), (request.Method, request.Path, request.Token));
        using var json = JsonDocument.Parse(request.Body);
        Assert.Equal(NodeId, json.RootElement.GetProperty("node_id").GetGuid());
        Assert.True(json.RootElement.GetProperty("healthy").GetBoolean());
        Assert.Equal(7, json.RootElement.GetProperty("active_peer_count").GetInt32());
    }

    [Fact]
    public async Task PostHeartbeatAsync_Body_IsTheContractBytes()
    {
        await using var entry = await FakeEntry.StartAsync(unixSocket: true);
        entry.Respond(204, "");
        using var client = new EntryClient(Options(entry.Url));

        await client.PostHeartbeatAsync(false, 65_536, Token);

        Assert.Equal("{\"node_id\":\"0195a8c4-0000-7000-8000-0000000000aa\",\"healthy\":false,\"active_peer_count\":65536}", Assert.Single(entry.Requests).Body);
    }

    [Theory]
    [InlineData("http://entry.internal:8080", "http://entry.internal:8080/")]
    [InlineData("https://entry.example/api/", "https://entry.example/api/")]
    [InlineData("unix:/run/vpn/entry.sock", "http://localhost/")]
    public void BaseAddressFor_EntryUrl_RelativePathsResolveBelowIt(string url, string expected)
    {
        Assert.Equal(new Uri(expected), EntryClient.BaseAddressFor(new Uri(url)));
    }

    /// <summary>Entry's internal API as a real Kestrel server answering what the test says.</summary>
    private sealed class FakeEntry : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly string? _socketPath;
        private readonly List<(string Method, string Path, string? Token, string Body)> _requests = [];
        private (int Status, string Body, TimeSpan Delay) _answer = (500, "", TimeSpan.Zero);

        private FakeEntry(WebApplication app, string? socketPath)
        {
            _app = app;
            _socketPath = socketPath;
        }

        public Uri Url { get; private set; } = null!;

        public IReadOnlyList<(string Method, string Path, string? Token, string Body)> Requests
        {
            get
            {
                lock (_requests)
                {
                    return [.. _requests];
                }
            }
        }

        public void Respond(int status, string body, TimeSpan? delay = null) => _answer = (status, body, delay ?? TimeSpan.Zero);

        public static async Task<FakeEntry> StartAsync(bool unixSocket)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            var socketPath = unixSocket ? Path.Combine(Path.GetTempPath(), $"entry-{Guid.NewGuid():N}.sock") : null;
            builder.WebHost.ConfigureKestrel(k =>
            {
                if (socketPath is not null)
                {
                    k.ListenUnixSocket(socketPath);
                }
                else
                {
                    k.Listen(IPAddress.Loopback, 0);
                }
            });
            var app = builder.Build();
            var entry = new FakeEntry(app, socketPath);
            app.Run(entry.HandleAsync);
            await app.StartAsync(TestContext.Current.CancellationToken);
            entry.Url = socketPath is not null
                ? new Uri("unix:" + socketPath)
                : new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
            return entry;
        }

        private async Task HandleAsync(HttpContext context)
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            lock (_requests)
            {
                _requests.Add((context.Request.Method, context.Request.Path.Value ?? "", context.Request.Headers["x-admin-token"].FirstOrDefault(), body));
            }
            var (status, answer, delay) = _answer;
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, context.RequestAborted);
            }
            context.Response.StatusCode = status;
            if (answer.Length > 0)
            {
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(answer, context.RequestAborted);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync(CancellationToken.None);
            await _app.DisposeAsync();
            if (_socketPath is not null)
            {
                File.Delete(_socketPath);
            }
        }
    }
}
