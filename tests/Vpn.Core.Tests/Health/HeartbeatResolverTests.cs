using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Vpn.Core.EntryApi;
using Vpn.Core.Health;

namespace Vpn.Core.Tests.Health;

/// <summary>The heartbeat a synced core posts to a real HTTP server: unhealthy while its checked resolver fails.</summary>
public class HeartbeatResolverTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(false, null, true)]
    [InlineData(true, null, false)]
    [InlineData(true, "no answer within 2 s", false)]
    [InlineData(true, "", true)]
    public async Task Heartbeat_SyncedCore_HealthyUnlessTheCheckedResolverFails(bool check, string? lastProblem, bool expected)
    {
        await using var entry = await HeartbeatSink.StartAsync();
        var options = new CoreOptions
        {
            ClientPool = Ipv4Network.Parse("10.64.0.0/24"),
            EntryUrl = entry.Url,
            NodeId = Guid.NewGuid(),
            AdminToken = "test-admin-token",
            ResolverCheck = check,
            HeartbeatInterval = TimeSpan.FromHours(1),
        };
        using var rig = new ReconcileRig(options: options);
        rig.Desired.Set();
        await rig.PassAsync();
        var resolver = new ResolverHealth(options, rig.Meters, rig.Clock);
        // null: no check has run yet; "": the last check passed; else the problem it found on the IPv4 gateway.
        if (lastProblem is not null)
        {
            resolver.Record(new ResolverProbeResult([new ResolverAnswer(IPAddress.Parse("10.64.0.1"), lastProblem.Length == 0 ? null : lastProblem)]));
        }
        using var client = new EntryClient(options);
        var heartbeat = new HeartbeatService(options, new NodeHealth(rig.Registry, rig.Dataplane, resolver), client, rig.Clock,
            new ListLogger<HeartbeatService>());

        await heartbeat.StartAsync(Token);
        var body = await entry.FirstAsync();
        await heartbeat.StopAsync(Token);

        Assert.Equal(expected, body.GetProperty("healthy").GetBoolean());
    }

    /// <summary>Entry's heartbeat endpoint on a unix socket: remembers the first body it gets.</summary>
    private sealed class HeartbeatSink : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly string _socket;
        private readonly TaskCompletionSource<JsonElement> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private HeartbeatSink(WebApplication app, string socket)
        {
            _app = app;
            _socket = socket;
        }

        public Uri Url => new("unix:" + _socket);

        public Task<JsonElement> FirstAsync() => _first.Task.WaitAsync(TimeSpan.FromSeconds(10), Token);

        public static async Task<HeartbeatSink> StartAsync()
        {
            var socket = Path.Combine(Path.GetTempPath(), $"entry-hb-{Guid.NewGuid():N}.sock");
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(socket));
            var app = builder.Build();
            var sink = new HeartbeatSink(app, socket);
            app.MapPost("/v1/internal/nodes/health", async (HttpContext context) =>
            {
                sink._first.TrySetResult((await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted)).RootElement.Clone());
                return Results.NoContent();
            });
            await app.StartAsync(Token);
            return sink;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.DisposeAsync();
            File.Delete(_socket);
        }
    }
}
