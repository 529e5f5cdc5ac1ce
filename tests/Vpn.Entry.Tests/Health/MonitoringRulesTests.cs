using System.Text.RegularExpressions;
using Vpn.Harness;

namespace Vpn.Entry.Tests.Health;

/// <summary>
/// The alert rules and dashboard in deploy/monitoring: promtool accepts the rules and their unit tests pass (each alert
/// fires on series that should fire it and not on others), and every series they read is one entry or core really
/// serves — scraped from a running entry and a running core, so a renamed instrument breaks this test, not an
/// operator's pager.
/// </summary>
public sealed partial class MonitoringRulesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string Monitoring = Path.Combine(RepositoryPaths.Root, "deploy", "monitoring");

    // Counters a process exports only once the event has happened (OpenTelemetry shows no series before the first
    // measurement): each is checked to be an instrument of the source under its OpenTelemetry name instead.
    private static readonly Dictionary<string, (string File, string Instrument)> ExportedOnFirstEvent = new(StringComparer.Ordinal)
    {
        ["vpn_core_reconcile_peers_added_total"] = ("src/Vpn.Core/Reconciliation/ReconcileMetrics.cs", "vpn.core.reconcile.peers_added"),
        ["vpn_core_reconcile_peers_removed_total"] = ("src/Vpn.Core/Reconciliation/ReconcileMetrics.cs", "vpn.core.reconcile.peers_removed"),
        ["vpn_core_reconcile_peers_corrected_total"] = ("src/Vpn.Core/Reconciliation/ReconcileMetrics.cs", "vpn.core.reconcile.peers_corrected"),
        ["vpn_core_filter_dropped_packets_total"] = ("src/Vpn.Core/Health/FilterDropMetrics.cs", "vpn.core.filter.dropped_packets"),
        ["vpn_session_requests_shed_total"] = ("src/Vpn.Entry/EntryMetrics.cs", "vpn_session_requests_shed"),
        ["vpn_node_connects_shed_total"] = ("src/Vpn.Entry/EntryMetrics.cs", "vpn_node_connects_shed"),
    };

    [Fact]
    public async Task AlertRules_PassPromtoolCheckAndTheirUnitTests()
    {
        Prerequisites.RequireExecutable("promtool");

        var check = await ProcessRunner.RunAsync("promtool", ["check", "rules", Path.Combine(Monitoring, "alerts.yaml")]);
        Assert.True(check.ExitCode == 0, check.StandardOutput + check.StandardError);
        Assert.Contains("SUCCESS: 9 rules found", check.StandardOutput + check.StandardError, StringComparison.Ordinal);
        var unit = await ProcessRunner.RunAsync("promtool", ["test", "rules", Path.Combine(Monitoring, "alerts.test.yaml")]);
        Assert.True(unit.ExitCode == 0, unit.StandardOutput + unit.StandardError);
    }

    [Fact]
    public async Task RulesAndDashboard_ReadOnlySeriesThatEntryAndCoreServe()
    {
        var served = new HashSet<string>(StringComparer.Ordinal);
        served.UnionWith(await EntrySeriesAsync());
        served.UnionWith(await CoreSeriesAsync());

        var referenced = SeriesIn(await File.ReadAllTextAsync(Path.Combine(Monitoring, "alerts.yaml"), Ct))
            .Concat(SeriesIn(await File.ReadAllTextAsync(Path.Combine(Monitoring, "grafana-dashboard.json"), Ct)))
            .ToHashSet(StringComparer.Ordinal);

        Assert.Contains("vpn_nodes", referenced);
        Assert.Contains("vpn_core_reconcile_synced", referenced);
        foreach (var name in referenced.Where(n => !served.Contains(n)))
        {
            Assert.True(ExportedOnFirstEvent.TryGetValue(name, out var source),
                $"{name} is read by deploy/monitoring but served by neither entry nor core (served: {string.Join(", ", served.Order(StringComparer.Ordinal))})");
            Assert.Contains($"\"{source.Instrument}\"", await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.Root, source.File), Ct), StringComparison.Ordinal);
        }
    }

    // entry after a start, a start its core fails, an end and a wrong admin token: the lifecycle counters exist.
    private static async Task<IEnumerable<string>> EntrySeriesAsync()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory);
        var customer = await stack.SeedCustomerAsync();
        var start = new { device_id = customer.DeviceId, region = "eu-west" };
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions", start), 201);
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
        stack.CoreDown = true;
        stack.ExpectErrors(_ => true);
        using (await stack.Client.SendAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions", start), Ct))
        {
        }
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/v1/admin/nodes");
        wrong.Headers.Add("x-admin-token", "not-the-token");
        using (await stack.Client.SendAsync(wrong, Ct))
        {
        }
        return Families(await stack.Client.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct));
    }

    // A real core process (noop dataplane) whose entry is unreachable: its reconcile instruments, failures included.
    private static async Task<IEnumerable<string>> CoreSeriesAsync()
    {
        var dll = RepositoryPaths.ServiceDll("Vpn.Core");
        Prerequisites.Require(File.Exists(dll), $"built core at {dll}");
        var port = RepositoryPaths.FreeLoopbackPort();
        var socket = Path.Combine(Path.GetTempPath(), $"core-monitoring-{Environment.ProcessId}-{Guid.NewGuid():N}.sock");
        await using var core = new BackgroundProcess("dotnet", [dll], new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = "unix:" + socket,
            ["CORE_METRICS_LISTEN"] = $"127.0.0.1:{port}",
            ["WG_DATAPLANE"] = "noop",
            ["CORE_ENTRY_URL"] = "http://127.0.0.1:9",
            ["CORE_NODE_ID"] = Guid.NewGuid().ToString(),
            ["ADMIN_API_TOKEN"] = "monitoring-test-token",
            ["CORE_RECONCILE_SECS"] = "1",
        });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            for (var deadline = DateTime.UtcNow.AddSeconds(60); DateTime.UtcNow < deadline && !core.HasExited; await Task.Delay(250, Ct))
            {
                try
                {
                    var body = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"), Ct);
                    if (body.Contains("vpn_core_reconcile_failures_total", StringComparison.Ordinal))
                    {
                        return Families(body);
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
            }
            throw new Xunit.Sdk.XunitException("core served no reconcile failures at /metrics within 60 s: " + core.Output);
        }
        finally
        {
            File.Delete(socket);
        }
    }

    /// <summary>Metric names in an exposition (a histogram's _bucket/_count/_sum and a counter's _total included).</summary>
    private static IEnumerable<string> Families(string exposition) =>
        exposition.Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split('{', ' ')[0]).Distinct(StringComparer.Ordinal);

    // vpn_reason is a label of core's failure counter, not a series.
    private static IEnumerable<string> SeriesIn(string text) =>
        SeriesName().Matches(text).Select(m => m.Value).Where(n => n != "vpn_reason").Distinct(StringComparer.Ordinal);

    [GeneratedRegex(@"\b(vpn_[a-z_]+|http_server_request_duration_seconds_(count|bucket|sum))\b")]
    private static partial Regex SeriesName();
}
