using Vpn.TestSupport;

namespace Vpn.Core.Tests.Health;

/// <summary>
/// The real core binary answers the kubelet's probes on its metrics listener (CORE_METRICS_LISTEN) only: /healthz while
/// it serves, /readyz 200 when it would report itself healthy to entry and 503 while its leases are not synced with
/// entry (an entry it cannot reach). The gRPC port serves neither.
/// </summary>
public class HealthEndpointTests
{
    [Fact]
    public async Task Probes_NoopCoreWithoutReconciliation_LiveAndReady()
    {
        var (grpcPort, metricsPort) = (RepositoryPaths.FreeLoopbackPort(), RepositoryPaths.FreeLoopbackPort());
        await using var core = StartCore(grpcPort, metricsPort, []);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        await WaitForHealthzAsync(http, core, metricsPort);

        using var ready = await http.GetAsync(new Uri($"http://127.0.0.1:{metricsPort}/readyz"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ok\n", await ready.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Probes_EntryUnreachable_LiveButNotReady_AndNotOnGrpcPort()
    {
        var (grpcPort, metricsPort, entryPort) = (RepositoryPaths.FreeLoopbackPort(), RepositoryPaths.FreeLoopbackPort(), RepositoryPaths.FreeLoopbackPort());
        // Nothing listens on entryPort: the first sync never happens, so Connect would be refused and entry must not
        // pick this node; the pod must not count as ready either.
        await using var core = StartCore(grpcPort, metricsPort, new Dictionary<string, string?>
        {
            ["CORE_ENTRY_URL"] = $"http://127.0.0.1:{entryPort}",
            ["CORE_NODE_ID"] = Guid.NewGuid().ToString(),
            ["ADMIN_API_TOKEN"] = "health-endpoint-test-token",
        });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        await WaitForHealthzAsync(http, core, metricsPort);

        using var ready = await http.GetAsync(new Uri($"http://127.0.0.1:{metricsPort}/readyz"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var body = await ready.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal("not ready\n", body);
        Assert.DoesNotContain("health-endpoint-test-token", body, StringComparison.Ordinal);

        // HTTP/2 with prior knowledge, as a gRPC client speaks to the cleartext endpoint: no probe answers there.
        foreach (var path in new[] { "/healthz", "/readyz" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{grpcPort}{path}"))
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
    }

    private static BackgroundProcess StartCore(int grpcPort, int metricsPort, Dictionary<string, string?> extra)
    {
        var dll = RepositoryPaths.ServiceDll("Vpn.Core");
        Prerequisites.Require(File.Exists(dll), $"built core at {dll}");
        var environment = new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = $"127.0.0.1:{grpcPort}",
            ["CORE_METRICS_LISTEN"] = $"127.0.0.1:{metricsPort}",
            ["WG_DATAPLANE"] = "noop",
        };
        foreach (var (name, value) in extra)
        {
            environment[name] = value;
        }
        return new BackgroundProcess("dotnet", [dll], environment);
    }

    // Waits for the host to come up (not a timed assertion: the deadline only bounds a core that never starts).
    private static async Task WaitForHealthzAsync(HttpClient http, BackgroundProcess core, int port)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(60); DateTime.UtcNow < deadline && !core.HasExited;)
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/healthz"), TestContext.Current.CancellationToken);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("ok\n", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
                return;
            }
            catch (HttpRequestException)
            {
                await Task.Delay(200, TestContext.Current.CancellationToken);
            }
        }
        Assert.Fail("core did not answer /healthz: " + core.Output);
    }
}
