using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Vpn.Core.EntryApi;
using Vpn.Core.Health;

namespace Vpn.Core.Tests.Health;

/// <summary>A stopping core's last heartbeat says unhealthy, so entry drops it from selection at once; bounded when entry does not answer.</summary>
public class HeartbeatShutdownTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StopAsync_AfterHealthyBeats_PostsFinalUnhealthyBeatWithThePeerCount()
    {
        await using var entry = await HeartbeatSink.StartAsync(hang: false);
        var (heartbeat, log, rig) = Create(entry.Url);
        using var _ = rig;

        await heartbeat.StartAsync(Token);
        var first = await entry.NextAsync();
        await heartbeat.StopAsync(Token);
        var last = await entry.NextAsync();

        Assert.True(first.GetProperty("healthy").GetBoolean());
        Assert.False(last.GetProperty("healthy").GetBoolean());
        Assert.Equal(first.GetProperty("active_peer_count").GetInt32(), last.GetProperty("active_peer_count").GetInt32());
        Assert.Contains(log.Entries, e => e.Id.Id == 502);
        Assert.Empty(log.Errors);
    }

    [Fact]
    public async Task StopAsync_EntryUnreachable_StopsAndLogsAWarning()
    {
        var (heartbeat, log, rig) = Create(new Uri($"unix:/tmp/vpn-missing-{Guid.NewGuid():N}/entry.sock"));
        using var _ = rig;

        await heartbeat.StartAsync(Token);
        await heartbeat.StopAsync(Token);

        Assert.Contains(log.Entries, e => e.Id.Id == 503 && e.Level == LogLevel.Warning);
        Assert.Empty(log.Errors);
    }

    [Fact]
    public async Task StopAsync_EntryNeverAnswers_GivesUpAtTheBound()
    {
        await using var entry = await HeartbeatSink.StartAsync(hang: true);
        var (heartbeat, log, rig) = Create(entry.Url);
        using var _ = rig;

        await heartbeat.StartAsync(Token);
        await entry.NextAsync();
        // Neither the loop's beat (cancelled by stopping) nor the final one is ever answered: StopAsync still returns.
        await heartbeat.StopAsync(Token);

        Assert.Contains(log.Entries, e => e.Id.Id == 503 && e.Message.Contains("Canceled", StringComparison.Ordinal));
    }

    private static (HeartbeatService Heartbeat, ListLogger<HeartbeatService> Log, ReconcileRig Rig) Create(Uri entryUrl)
    {
        var options = new CoreOptions
        {
            ClientPool = Ipv4Network.Parse("10.64.0.0/24"),
            EntryUrl = entryUrl,
            NodeId = Guid.NewGuid(),
            AdminToken = "test-admin-token",
            HeartbeatInterval = TimeSpan.FromHours(1),
        };
        var rig = new ReconcileRig(options: options);
        rig.Desired.Set();
        rig.PassAsync().GetAwaiter().GetResult();
        var log = new ListLogger<HeartbeatService>();
        var client = new EntryClient(options);
        var heartbeat = new HeartbeatService(options, new NodeHealth(rig.Registry, rig.Dataplane, new ResolverHealth(options, rig.Meters, rig.Clock)),
            client, TimeProvider.System, log);
        return (heartbeat, log, rig);
    }

    /// <summary>Entry's heartbeat endpoint on a unix socket: hands each body to the test; with hang, never answers.</summary>
    private sealed class HeartbeatSink : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly string _socket;
        private readonly Channel<JsonElement> _bodies = Channel.CreateUnbounded<JsonElement>();

        private HeartbeatSink(WebApplication app, string socket)
        {
            _app = app;
            _socket = socket;
        }

        public Uri Url => new("unix:" + _socket);

        public async Task<JsonElement> NextAsync() => await _bodies.Reader.ReadAsync(Token).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Token);

        public static async Task<HeartbeatSink> StartAsync(bool hang)
        {
            var socket = Path.Combine(Path.GetTempPath(), $"entry-hb-{Guid.NewGuid():N}.sock");
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(socket));
            var app = builder.Build();
            var sink = new HeartbeatSink(app, socket);
            app.MapPost("/v1/internal/nodes/health", async (HttpContext context) =>
            {
                var body = (await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted)).RootElement.Clone();
                sink._bodies.Writer.TryWrite(body);
                if (hang)
                {
                    await Task.Delay(Timeout.Infinite, context.RequestAborted);
                }
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
