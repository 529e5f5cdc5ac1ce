namespace Vpn.EndToEnd;

/// <summary>
/// deploy/k8s/smoke-check.sh, the post-deploy gate, against real entry and core processes on their embedded defaults
/// (in-memory store, seeded development node, noop dataplane, core reconciling with entry): it passes on a ready stack
/// and fails when something it guards is wrong.
/// </summary>
public sealed class SmokeCheckTests
{
    private static readonly string Script = Path.Combine(RepoLayout.Root, "deploy", "k8s", "smoke-check.sh");

    [Fact(Timeout = 180_000)]
    public async Task Smoke_check_passes_on_a_ready_stack_and_fails_on_a_wrong_token_a_production_demand_or_a_dead_core()
    {
        var ct = TestContext.Current.CancellationToken;
        var entryPort = VpnStackFixture.FreeLoopbackPort();
        var corePort = VpnStackFixture.FreeLoopbackPort();
        var entryUrl = new Uri($"http://127.0.0.1:{entryPort}/");
        const string token = "smoke-admin-token-0123456789abcdef";
        await using var entry = VpnStackFixture.StartCapped(null, RepoLayout.EntryDll, new Dictionary<string, string?>
        {
            ["ASPNETCORE_URLS"] = entryUrl.ToString().TrimEnd('/'),
            ["APP_ENV"] = "development",
            ["ADMIN_API_TOKEN"] = token,
            ["APP_DEV_CORE_ENDPOINT"] = $"http://127.0.0.1:{corePort}",
            ["DATABASE_URL"] = null,
        });
        await VpnStackFixture.WaitForEntryReadyAsync(entry, entryUrl, TimeSpan.FromSeconds(60), "entry", ct);
        var core = VpnStackFixture.StartCapped(null, RepoLayout.CoreDll, new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = $"127.0.0.1:{corePort}",
            ["WG_DATAPLANE"] = "noop",
            ["CORE_ENTRY_URL"] = entryUrl.ToString().TrimEnd('/'),
            ["CORE_NODE_ID"] = "00000000-0000-4000-8000-00000000d001",
            ["ADMIN_API_TOKEN"] = token,
            ["CORE_HEARTBEAT_SECS"] = "1",
            ["CORE_RECONCILE_SECS"] = "1",
            ["ASPNETCORE_URLS"] = null,
        });
        var coreRunning = true;
        try
        {
            // Ready once the core has heartbeated healthy and reconciled: poll the gate itself.
            var passed = await RunUntilAsync(entryUrl, token, production: false, expectExit: 0, TimeSpan.FromSeconds(60), ct);
            Assert.Contains("smoke check passed", passed.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("ok    core/dev-node-1: healthy, synced", passed.StandardOutput, StringComparison.Ordinal);
            Assert.DoesNotContain(token, passed.StandardOutput + passed.StandardError, StringComparison.Ordinal);

            var wrongToken = await RunAsync(entryUrl, "not-the-token", production: false, ct);
            Assert.Equal(1, wrongToken.ExitCode);
            Assert.Contains("readiness answered 401", wrongToken.StandardOutput, StringComparison.Ordinal);

            // The development stack is not what production needs: partial redaction, a cleartext core endpoint.
            var production = await RunAsync(entryUrl, token, production: true, ct);
            Assert.Equal(1, production.ExitCode);
            Assert.Contains("FAIL  privacy: log redaction is partial", production.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("FAIL  core/dev-node-1: cleartext core endpoint", production.StandardOutput, StringComparison.Ordinal);

            await core.DisposeAsync();
            coreRunning = false;
            var dead = await RunAsync(entryUrl, token, production: false, ct);
            Assert.Equal(1, dead.ExitCode);
            Assert.Contains("FAIL  core/dev-node-1", dead.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            if (coreRunning)
            {
                await core.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// A core whose resolver does not answer (it checks the gateway addresses in its namespace, where nothing serves DNS
    /// yet) fails the gate by name; once unbound runs there on the config `resolver-config` renders, the gate passes.
    /// Core runs in a network namespace of its own and meets entry over unix sockets, so nothing else can answer on port 53.
    /// </summary>
    [Fact(Timeout = 180_000)]
    public async Task Smoke_check_fails_while_a_core_reports_its_resolver_unhealthy_and_passes_once_it_answers()
    {
        Prerequisites.Require(Prerequisites.IsRoot, "root (network namespaces)");
        Prerequisites.RequireExecutable("ip");
        Prerequisites.RequireExecutable("unbound");
        Prerequisites.Require(File.Exists("/usr/share/dns/root.key"), "/usr/share/dns/root.key (dns-root-data)");
        var ct = TestContext.Current.CancellationToken;
        var directory = Directory.CreateTempSubdirectory("smk");
        var entrySocket = Path.Combine(directory.FullName, "entry.sock");
        var coreSocket = Path.Combine(directory.FullName, "core.sock");
        var entryUrl = new Uri($"http://127.0.0.1:{VpnStackFixture.FreeLoopbackPort()}/");
        const string token = "smoke-admin-token-0123456789abcdef";
        var ns = await NetworkNamespace.CreateAsync("smk");
        BackgroundProcess? entry = null, core = null, unbound = null;
        try
        {
            // The gateway addresses of the default pools, where the node's resolver listens.
            await ns.ExecCheckedAsync("ip", "addr", "add", "10.64.0.1/32", "dev", "lo");
            await ns.ExecCheckedAsync("ip", "addr", "add", "fd64:6400::1/128", "dev", "lo");
            entry = VpnStackFixture.StartCapped(null, RepoLayout.EntryDll, new Dictionary<string, string?>
            {
                ["ASPNETCORE_URLS"] = $"{entryUrl.ToString().TrimEnd('/')};http://unix:{entrySocket}",
                ["APP_ENV"] = "development",
                ["ADMIN_API_TOKEN"] = token,
                ["APP_DEV_CORE_ENDPOINT"] = "unix:" + coreSocket,
                ["DATABASE_URL"] = null,
            });
            await VpnStackFixture.WaitForEntryReadyAsync(entry, entryUrl, TimeSpan.FromSeconds(60), "entry", ct);
            core = VpnStackFixture.StartCapped(ns, RepoLayout.CoreDll, new Dictionary<string, string?>
            {
                ["CORE_GRPC_LISTEN"] = "unix:" + coreSocket,
                ["WG_DATAPLANE"] = "noop",
                ["CORE_ENTRY_URL"] = "unix:" + entrySocket,
                ["CORE_NODE_ID"] = "00000000-0000-4000-8000-00000000d001",
                ["ADMIN_API_TOKEN"] = token,
                ["CORE_HEARTBEAT_SECS"] = "1",
                ["CORE_RECONCILE_SECS"] = "1",
                ["CORE_RESOLVER_CHECK"] = "true",
                ["CORE_RESOLVER_CHECK_SECS"] = "1",
                ["ASPNETCORE_URLS"] = null,
            });

            var failing = await RunUntilAsync(entryUrl, token, production: false, expectExit: 1, TimeSpan.FromSeconds(60), ct,
                r => r.StandardOutput.Contains("FAIL  core/dev-node-1: resolver unhealthy: ", StringComparison.Ordinal)
                    && r.StandardOutput.Contains("FAIL  readiness/cores: ", StringComparison.Ordinal));
            Assert.Contains("FAIL  core/dev-node-1: resolver unhealthy: 10.64.0.1: refused: nothing listens on port 53; fd64:6400::1: refused: nothing listens on port 53",
                failing.StandardOutput, StringComparison.Ordinal);
            Assert.True(failing.StandardOutput.Contains("FAIL  readiness/cores: 0 of 1 cores healthy and synced; failed: dev-node-1 (unhealthy, resolver failing: ", StringComparison.Ordinal),
                failing.StandardOutput);

            var config = Path.Combine(directory.FullName, "unbound", "unbound.conf");
            var rendered = await ProcessRunner.RunAsync("dotnet", [RepoLayout.CoreDll, "resolver-config", "--out", config], null, TimeSpan.FromSeconds(60));
            Assert.True(rendered.ExitCode == 0, rendered.StandardError);
            unbound = ns.Start(Prerequisites.FindExecutable("unbound")!, ["-d", "-p", "-c", config]);

            var passed = await RunUntilAsync(entryUrl, token, production: false, expectExit: 0, TimeSpan.FromSeconds(60), ct);
            Assert.Contains("ok    core/dev-node-1: healthy, synced, 0 peers, noop dataplane, resolver answering", passed.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var process in new[] { unbound, core, entry })
            {
                if (process is not null)
                {
                    await process.DisposeAsync();
                }
            }
            await ns.DisposeAsync();
            directory.Delete(recursive: true);
        }
    }

    private static Task<ProcessResult> RunAsync(Uri entryUrl, string token, bool production, CancellationToken ct) =>
        ProcessRunner.RunAsync("bash", [Script], null, TimeSpan.FromSeconds(60), new Dictionary<string, string>
        {
            ["ENTRY_URL"] = entryUrl.ToString(),
            ["ADMIN_API_TOKEN"] = token,
            ["EXPECT_PRODUCTION"] = production ? "1" : "0",
            ["SMOKE_TIMEOUT_SECS"] = "5",
        });

    private static async Task<ProcessResult> RunUntilAsync(Uri entryUrl, string token, bool production, int expectExit, TimeSpan limit,
        CancellationToken ct, Func<ProcessResult, bool>? also = null)
    {
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            var result = await RunAsync(entryUrl, token, production, ct);
            if (result.ExitCode == expectExit && (also is null || also(result)))
            {
                return result;
            }
            Assert.True(DateTime.UtcNow < deadline, $"smoke check never exited {expectExit} as expected:\n{result.StandardOutput}\n{result.StandardError}");
            await Task.Delay(500, ct);
        }
    }
}
