using System.Net;
using System.Net.Sockets;
using Vpn.TestSupport;

namespace Vpn.Core.Tests.Health;

/// <summary>The real core binary serves its reconciliation instruments at /metrics on the HTTP/1.1 metrics endpoint.</summary>
public class MetricsEndpointTests
{
    [Fact]
    public async Task Metrics_CoreProcessWithMetricsListen_ServesReconcileInstruments()
    {
        var dll = CoreDll();
        Prerequisites.Require(File.Exists(dll), $"built core at {dll}");
        var port = FreePort();
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

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string CoreDll()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = dir.Parent!.Name;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Vpn.slnx")))
        {
            dir = dir.Parent;
        }
        return Path.Combine(dir?.FullName ?? "/nonexistent", "src", "Vpn.Core", "bin", configuration, "net10.0", "Vpn.Core.dll");
    }
}
