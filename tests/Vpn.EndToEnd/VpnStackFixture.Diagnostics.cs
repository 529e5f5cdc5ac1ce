namespace Vpn.EndToEnd;

// What tests call besides setup: the lab's commands, the node's heartbeat, a subscribed customer, and failing with every
// diagnostic (entry's and core's output, the network, PostgreSQL's log, the fixture's own log).
public partial class VpnStackFixture
{
    // ---------------------------------------------------------------- helpers for tests

    public Task RestartNodeWireGuardAsync() => NodeLab.RestartNodeWireGuardAsync();

    public Task<IReadOnlyList<string>> NodeWgShowPeersAsync() => NodeLab.NodeWgShowPeersAsync();

    public Task<ProcessResult> ClientCurlAsync(TimeSpan maxTime) => Lab.ClientCurlAsync(maxTime);

    /// <summary>The heartbeat core would send (the node namespace cannot reach entry's loopback), so the node is fresh.</summary>
    public async Task ReportNodeHealthyAsync(int activePeerCount = 0, CancellationToken cancellationToken = default)
    {
        var health = await EntryClient.AdminAsync(HttpMethod.Post, "/v1/internal/nodes/health",
            new { NodeId, Healthy = true, ActivePeerCount = activePeerCount }, cancellationToken);
        if (health.Status != HttpStatusCode.NoContent)
        {
            await FailAsync($"node heartbeat: expected 204, got {health.Describe()}");
        }
    }

    /// <summary>A new customer id with an active e2e subscription.</summary>
    public async Task<Guid> CreateSubscribedCustomerAsync(CancellationToken cancellationToken = default)
    {
        var customer = Guid.NewGuid();
        var subscription = await EntryClient.AdminAsync(HttpMethod.Post, "/v1/admin/subscriptions",
            new { CustomerId = customer, PlanCode, Status = "active" }, cancellationToken);
        await ExpectStatusAsync(subscription, HttpStatusCode.OK, HttpStatusCode.Created);
        return customer;
    }

    /// <summary>Fails unless the status is one of <paramref name="expected"/>, with the response and all diagnostics.</summary>
    public async Task<EntryResponse> ExpectStatusAsync(EntryResponse response, params HttpStatusCode[] expected)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (!expected.Contains(response.Status))
        {
            await FailAsync($"expected {string.Join(" or ", expected.Select(s => $"{(int)s} {s}"))}:\n{response.Describe()}");
        }
        return response;
    }

    public async Task CheckAsync(bool condition, string message)
    {
        if (!condition)
        {
            await FailAsync(message);
        }
    }

    public async Task FailAsync(string message) =>
        throw new Xunit.Sdk.XunitException($"{message}\n\n{await DiagnosticsAsync()}");

    /// <summary>entry's and core's output, the setup log and the lab's network state.</summary>
    public async Task<string> DiagnosticsAsync()
    {
        var sb = new StringBuilder(DescribeProcesses());
        if (NodeLab is not null)
        {
            sb.AppendLine("=== network ===").AppendLine(await NodeLab.DescribeAsync());
        }
        if (Postgres is not null)
        {
            sb.AppendLine("=== postgres log ===").AppendLine(Tail(Postgres.ReadLog()));
        }
        sb.AppendLine("=== fixture log (setup and fault steps) ===").AppendLine(_setupLog.ToString());
        return sb.ToString();
    }

    private string DescribeProcesses()
    {
        string previous;
        lock (_previousRuns)
        {
            previous = _previousRuns.ToString();
        }
        return (previous.Length == 0 ? "" : $"=== earlier (killed) entry/core processes, tails ===\n{Tail(previous)}\n") +
            $"=== entry output ({(EntryRunning ? "running" : "not running")}) ===\n{Tail(EntryOutput)}\n" +
            $"=== core output ({(CoreRunning ? "running" : "not running")}) ===\n{Tail(CoreOutput)}\n";
    }

    private void KeepPreviousRun(string what, int pid, string output)
    {
        const int perRun = 4_000;
        lock (_previousRuns)
        {
            _previousRuns.AppendLine($"--- {what} pid {pid}, killed {DateTime.UtcNow:HH:mm:ss.fff}:")
                .AppendLine(output.Length <= perRun ? output : "…" + output[^perRun..]);
        }
    }

    internal static string Tail(string text) => text.Length <= OutputTail ? text : "…" + text[^OutputTail..];
}
