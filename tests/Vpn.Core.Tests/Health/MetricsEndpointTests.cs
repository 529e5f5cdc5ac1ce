using Vpn.TestSupport;

namespace Vpn.Core.Tests.Health;

/// <summary>
/// The real core binary serves its reconciliation instruments at /metrics on the HTTP/1.1 metrics endpoint, and only
/// there: the gRPC endpoint serves gRPC and nothing else, whether or not CORE_METRICS_LISTEN is set.
/// </summary>
public class MetricsEndpointTests
{
    [Fact]
    public async Task Metrics_CoreProcessWithMetricsListen_ServesReconcileInstruments()
    {
        var dll = RepositoryPaths.ServiceDll("Vpn.Core");
        Prerequisites.Require(File.Exists(dll), $"built core at {dll}");
        var port = RepositoryPaths.FreeLoopbackPort();
        var socket = Path.Combine(Path.GetTempPath(), $"core-metrics-{Environment.ProcessId}.sock");
        await using var core = new BackgroundProcess("dotnet", [dll], new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = "unix:" + socket,
            ["CORE_METRICS_LISTEN"] = $"127.0.0.1:{port}",
            ["WG_DATAPLANE"] = "noop",
        });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        string? body = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(60); body is null && DateTime.UtcNow < deadline && !core.HasExited;)
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/metrics"), TestContext.Current.CancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
                }
            }
            catch (HttpRequestException)
            {
                await Task.Delay(200, TestContext.Current.CancellationToken);
            }
        }
        Assert.True(body is not null, "core did not serve /metrics: " + core.Output);
        Assert.Contains("vpn_core_reconcile_synced", body, StringComparison.Ordinal);
        File.Delete(socket);
    }

    [Fact]
    public async Task Metrics_Http2GetOnGrpcPort_404_OnMetricsPort_200()
    {
        var dll = RepositoryPaths.ServiceDll("Vpn.Core");
        Prerequisites.Require(File.Exists(dll), $"built core at {dll}");
        var grpcPort = RepositoryPaths.FreeLoopbackPort();
        var metricsPort = RepositoryPaths.FreeLoopbackPort();
        await using var core = new BackgroundProcess("dotnet", [dll], new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = $"127.0.0.1:{grpcPort}",
            ["CORE_METRICS_LISTEN"] = $"127.0.0.1:{metricsPort}",
            ["WG_DATAPLANE"] = "noop",
        });
        await WaitForGrpcAsync(core, grpcPort);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        Assert.Equal(HttpStatusCode.NotFound, await Http2GetAsync(http, grpcPort, "/metrics"));
        // Naming the metrics endpoint in :authority changes nothing: the listener decides, not a header the client sets.
        Assert.Equal(HttpStatusCode.NotFound, await Http2GetAsync(http, grpcPort, "/metrics", authority: $"127.0.0.1:{metricsPort}"));
        using var metrics = await http.GetAsync(new Uri($"http://127.0.0.1:{metricsPort}/metrics"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Contains("vpn_core_reconcile_synced", await metrics.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_WithoutMetricsListen_NotServedOnGrpcPort_GrpcStillAnswers()
    {
        var dll = RepositoryPaths.ServiceDll("Vpn.Core");
        Prerequisites.Require(File.Exists(dll), $"built core at {dll}");
        var grpcPort = RepositoryPaths.FreeLoopbackPort();
        await using var core = new BackgroundProcess("dotnet", [dll], new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = $"127.0.0.1:{grpcPort}",
            ["CORE_METRICS_LISTEN"] = null,
            ["WG_DATAPLANE"] = "noop",
        });
        await WaitForGrpcAsync(core, grpcPort);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        Assert.Equal(HttpStatusCode.NotFound, await Http2GetAsync(http, grpcPort, "/metrics"));
        Assert.Equal(HttpStatusCode.NotFound, await Http2GetAsync(http, grpcPort, "/"));
    }

    // gRPC answers once the host is up; GetNodeStatus needs no peers and changes nothing.
    private static async Task WaitForGrpcAsync(BackgroundProcess core, int port)
    {
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var client = new Vpn.Contracts.Core.V1.VpnControl.VpnControlClient(channel);
        for (var deadline = DateTime.UtcNow.AddSeconds(60); DateTime.UtcNow < deadline && !core.HasExited;)
        {
            try
            {
                await client.GetNodeStatusAsync(new Vpn.Contracts.Core.V1.GetNodeStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5),
                    cancellationToken: TestContext.Current.CancellationToken);
                return;
            }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Unavailable)
            {
                await Task.Delay(200, TestContext.Current.CancellationToken);
            }
        }
        Assert.Fail("core's gRPC endpoint did not come up: " + core.Output);
    }

    // HTTP/2 with prior knowledge, as a gRPC client speaks to the cleartext endpoint.
    private static async Task<HttpStatusCode> Http2GetAsync(HttpClient http, int port, string path, string? authority = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{port}{path}"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (authority is not null)
        {
            request.Headers.Host = authority;
        }
        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(HttpVersion.Version20, response.Version);
        return response.StatusCode;
    }
}
