using Vpn.Cli;
using Vpn.Cli.Client;

namespace Vpn.EndToEnd.Vpnctl;

/// <summary>
/// vpnctl's operator commands, run in-process (<see cref="CliApp.RunAsync"/> with captured output) against the real
/// entry and core processes of <see cref="VpnctlStackFixture"/>: tables for people, --json that parses, problems as
/// one readable line with their code and the documented exit codes, doctor's PASS/FAIL gates. With VPNCTL_CAPTURE_DIR
/// set, the outputs of `nodes list` and `doctor` are written there (the closing note's captures).
/// </summary>
public sealed partial class VpnctlTests(VpnctlStackFixture stack) : IClassFixture<VpnctlStackFixture>
{
    [Fact(Timeout = 180_000)]
    public async Task Nodes_list_show_and_register_and_plans_answer_tables_json_and_readable_problems()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var list = await Expect(await stack.RunAsync("nodes", "list"), ExitCodes.Ok, "ID", "DRIFT", stack.NodeId.ToString(), VpnStackFixture.NodeName, "healthy");
        Capture("cli-nodes-list-admin-test.txt", list);
        var json = await Expect(await stack.RunAsync("nodes", "list", "--json"), ExitCodes.Ok);
        var node = json.Json["items"]!.AsArray().Single(n => n!["name"]!.GetValue<string>() == VpnStackFixture.NodeName)!;
        await stack.CheckAsync(node["healthy"]!.GetValue<bool>() && node["core"]?["synced"]?.GetValue<bool>() == true
            && node["capacity"]!.GetValue<int>() == 100, $"nodes list --json: the e2e node healthy, capacity 100, its core synced\n{json.Describe()}");

        await Expect(await stack.RunAsync("nodes", "show", VpnStackFixture.NodeName), ExitCodes.Ok,
            $"id:              {stack.NodeId}", "core endpoint:   " + stack.CoreEndpoint, "healthy, synced", "drift:", "resolver:        answering");
        var byId = await Expect(await stack.RunAsync("--json", "nodes", "show", stack.NodeId.ToString()), ExitCodes.Ok);
        await stack.CheckAsync(byId.Json["core"]?["dataplane_mode"]?.GetValue<string>() == "linux", byId.Describe());
        await ExpectError(await stack.RunAsync("nodes", "show", "no-such-node"), ExitCodes.Refused, "error: 404 node_not_found: no node has the id or name 'no-such-node'");

        var name = "cli-reg-" + Guid.NewGuid().ToString("N")[..8];
        var key = DeviceKeys.Generate().PublicKey;
        string[] Register(int capacity) => ["nodes", "register", "--name", name, "--region", "cli-lab", "--country", "NL", "--public-endpoint", "192.0.2.7:51820",
            "--public-key", key, "--core-endpoint", "unix:/run/vpnctl-test-no-core.sock", "--capacity", capacity.ToString(CultureInfo.InvariantCulture)];
        var registered = await Expect(await stack.RunAsync(Register(10)), ExitCodes.Ok, $"registered node {name} (", "in cli-lab/NL, capacity 10");
        string? id = registered.Out.Split('(', ')')[1];
        try
        {
            var updated = await Expect(await stack.RunAsync([.. Register(7), "--json"]), ExitCodes.Ok);
            await stack.CheckAsync(updated.Json["id"]!.GetValue<string>() == id && updated.Json["capacity"]!.GetValue<int>() == 7, updated.Describe());
            await Expect(await stack.RunAsync("nodes", "list", "--no-core"), ExitCodes.Ok, name, "0/7 (0%)");
            // The API's own validation, passed on as one line with its code.
            await ExpectError(await stack.RunAsync([.. Register(7)[..^1], "70000"]), ExitCodes.Refused, "error: 400 invalid_request: ");
            await ExpectError(await stack.RunAsync("nodes", "register", "--name", name), ExitCodes.Usage, "--region");

            // Out of service by name: delete before a drain is the API's 409, then drain, undrain, drain, delete.
            await ExpectError(await stack.RunAsync("nodes", "delete", name), ExitCodes.Refused, "error: 409 node_not_draining: ");
            await Expect(await stack.RunAsync("nodes", "drain", name, "--migrate"), ExitCodes.Ok, $"node {name} is draining since ", "entry moves its sessions");
            await Expect(await stack.RunAsync("nodes", "list", "--no-core"), ExitCodes.Ok, "yes (migrate)");
            await Expect(await stack.RunAsync("nodes", "undrain", id), ExitCodes.Ok, $"node {name} takes new sessions again");
            await Expect(await stack.RunAsync("nodes", "drain", name), ExitCodes.Ok, "its sessions move on reconnect");
            await Expect(await stack.RunAsync("nodes", "delete", name), ExitCodes.Ok, $"deleted node {name} ({id})");
            id = null;
        }
        finally
        {
            if (id is not null)
            {
                await RemoveNodeAsync(id, ct);
            }
        }

        await Expect(await stack.RunAsync("plans", "list"), ExitCodes.Ok, "CODE", "MAX DEVICES", VpnStackFixture.PlanCode, VpnStackFixture.Region);
        await Expect(await stack.RunAsync("plans", "set", "cli-plan", "--name", "CLI plan", "--max-devices", "2", "--region", "e2e", "--region", "cli-lab"),
            ExitCodes.Ok, "plan cli-plan (CLI plan): 2 devices, unlimited a month, regions e2e,cli-lab");
        await Expect(await stack.RunAsync("plans", "set", "cli-metered", "--name", "CLI metered", "--max-devices", "2", "--region", "e2e",
            "--monthly-data-bytes", "10737418240"), ExitCodes.Ok, "plan cli-metered (CLI metered): 2 devices, 10.0 GiB a month, regions e2e");
        await Expect(await stack.RunAsync("plans", "list"), ExitCodes.Ok, "MONTHLY DATA", "10.0 GiB", "unlimited");
        var plans = await Expect(await stack.RunAsync("plans", "list", "--json"), ExitCodes.Ok);
        await stack.CheckAsync(plans.Json["items"]!.AsArray().Any(p => p!["code"]!.GetValue<string>() == "cli-plan"), plans.Describe());

        // Credentials: none is a usage error (exit 2), a wrong one the API's 401 (exit 4); never the token in the output.
        var noToken = await ExpectError(await stack.RunWithAsync(new Dictionary<string, string?> { ["VPNCTL_ADMIN_TOKEN"] = null }, null, "nodes", "list"),
            ExitCodes.Usage, "error: no admin token: set VPNCTL_ADMIN_TOKEN or pass --token-file FILE");
        var wrong = await ExpectError(await stack.RunWithAsync(new Dictionary<string, string?> { ["VPNCTL_ADMIN_TOKEN"] = "not-the-token" }, null, "nodes", "list"),
            ExitCodes.Unauthorized, "error: 401 unauthorized");
        await stack.CheckAsync(!wrong.Err.Contains("not-the-token", StringComparison.Ordinal) && !noToken.Err.Contains(stack.AdminToken, StringComparison.Ordinal), wrong.Describe());
        var tokenFile = Path.Combine(stack.NodeLab.WorkDirectory, "admin.token");
        File.WriteAllText(tokenFile, stack.AdminToken + "\n");
        await Expect(await stack.RunWithAsync(new Dictionary<string, string?> { ["VPNCTL_ADMIN_TOKEN"] = null }, null, "nodes", "list", "--token-file", tokenFile),
            ExitCodes.Ok, VpnStackFixture.NodeName);
        // Nothing listens on port 1: no answer at all is exit 5, naming the URL.
        await ExpectError(await stack.RunAsync("nodes", "list", "--url", "http://127.0.0.1:1"), ExitCodes.Unavailable, "error: no answer from entry at http://127.0.0.1:1/v1/admin/nodes: connection error");
        await ExpectError(await stack.RunAsync("nodes", "frobnicate"), ExitCodes.Usage, "frobnicate");
    }

    [Fact(Timeout = 180_000)]
    public async Task Subscriptions_set_show_history_and_export_and_customer_lookup()
    {
        stack.EnsureReady();
        var customer = Guid.NewGuid().ToString();
        await Expect(await stack.RunAsync("subscriptions", "set", customer, "--plan", VpnStackFixture.PlanCode, "--status", "trialing"), ExitCodes.Ok,
            $"customer {customer}: plan {VpnStackFixture.PlanCode}, trialing since ");
        await Expect(await stack.RunAsync("subscriptions", "set", customer, "--plan", VpnStackFixture.PlanCode), ExitCodes.Ok, "active since");
        await Expect(await stack.RunAsync("subscriptions", "show", customer), ExitCodes.Ok, "CUSTOMER", customer, "active", VpnStackFixture.Region);
        var history = await Expect(await stack.RunAsync("subscriptions", "history", customer, "--json"), ExitCodes.Ok);
        var periods = history.Json["items"]!.AsArray();
        await stack.CheckAsync(periods.Count == 2 && periods[0]!["status"]!.GetValue<string>() == "trialing" && periods[0]!["ended_at"] is not null
            && periods[1]!["status"]!.GetValue<string>() == "active" && periods[1]!["ended_at"] is null, $"two periods, oldest first:\n{history.Describe()}");
        await Expect(await stack.RunAsync("customers", "show", customer), ExitCodes.Ok, $"customer:      {customer}", "history:       2 period(s)", "trialing");
        await Expect(await stack.RunAsync("customers", "usage", customer), ExitCodes.Ok, "used 0 B this period, no quota (period resets ");
        var reset = await Expect(await stack.RunAsync("customers", "usage", customer, "--reset", "--json"), ExitCodes.Ok);
        await stack.CheckAsync(reset.Json["used_bytes"]!.GetValue<long>() == 0 && reset.Json["resets_at"] is not null, reset.Describe());
        await ExpectError(await stack.RunAsync("customers", "usage", "not-a-uuid"), ExitCodes.Refused, "error: 400 invalid_request: 'customer_id' must be a UUID.");

        var file = Path.Combine(stack.NodeLab.WorkDirectory, "subscriptions.csv");
        var export = await Expect(await stack.RunAsync("subscriptions", "export", "--out", file, "--plan", VpnStackFixture.PlanCode, "--json"), ExitCodes.Ok);
        var lines = await File.ReadAllLinesAsync(file, TestContext.Current.CancellationToken);
        await stack.CheckAsync(lines[0] == "customer_id,plan_code,plan_name,status,max_devices,allowed_regions,started_at,ended_at"
            && lines.Count(l => l.StartsWith(customer + $",{VpnStackFixture.PlanCode},E2E,active,5,{VpnStackFixture.Region},", StringComparison.Ordinal)) == 1
            && export.Json["rows"]!.GetValue<int>() == lines.Length - 1, $"export:\n{export.Describe()}\n{string.Join('\n', lines)}");

        var unknown = Guid.NewGuid().ToString();
        await ExpectError(await stack.RunAsync("subscriptions", "show", unknown), ExitCodes.Refused, "error: 404 subscription_not_found: The customer has no subscription.");
        await ExpectError(await stack.RunAsync("customers", "show", unknown), ExitCodes.Refused, "error: 404 subscription_not_found");
        await ExpectError(await stack.RunAsync("subscriptions", "show", "not-a-uuid"), ExitCodes.Refused, "error: 400 invalid_request: 'customer_id' must be a UUID.");
        await ExpectError(await stack.RunAsync("subscriptions", "set", customer, "--plan", "no-such-plan"), ExitCodes.Refused, "error: 404 plan_not_found: No such plan.");
        await ExpectError(await stack.RunAsync("subscriptions", "set", customer, "--plan", "e2e", "--status", "paused"), ExitCodes.Usage, "paused");
    }

    [Fact(Timeout = 240_000)]
    public async Task Doctor_passes_on_the_ready_stack_and_fails_readably_on_a_dead_core_or_a_wrong_token()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        // Right after setup the node's resolver check or a reconcile pass may still be on its way: the gate itself is polled.
        var passed = await UntilAsync(() => stack.RunAsync("doctor"), r => r.ExitCode == ExitCodes.Ok, TimeSpan.FromSeconds(60));
        await Expect(passed, ExitCodes.Ok, "PASS  healthz: 200 ok", "PASS  readyz: 200 ready", "PASS  readiness/store: ", "PASS  readiness: ready",
            $"PASS  core/{VpnStackFixture.NodeName}: healthy, synced, ", "linux dataplane, resolver answering", "doctor: all ");
        await stack.CheckAsync(!passed.Out.Contains("FAIL", StringComparison.Ordinal) && !passed.Out.Contains(stack.AdminToken, StringComparison.Ordinal), passed.Describe());
        Capture("cli-doctor.txt", passed);
        var status = await Expect(await stack.RunAsync("status"), ExitCodes.Ok, "/readyz 200 ready, readiness ready", VpnStackFixture.NodeName, "answering");
        Capture("cli-status.txt", status);

        // The production demands fail on this development stack (partial redaction), by name.
        await Expect(await stack.RunAsync("doctor", "--production"), ExitCodes.CheckFailed, "FAIL  privacy: log redaction is ");

        var wrong = await Expect(await stack.RunWithAsync(new Dictionary<string, string?> { ["VPNCTL_ADMIN_TOKEN"] = "not-the-token" }, null, "doctor"),
            ExitCodes.CheckFailed, "PASS  readyz", "FAIL  readiness: 401 unauthorized", "(is the admin token right?)", "FAIL  nodes: 401 unauthorized", "checks FAILED");
        await stack.CheckAsync(!wrong.Out.Contains("not-the-token", StringComparison.Ordinal), wrong.Describe());

        // A node whose core cannot be reached (nothing listens on its socket): its gate fails by name, the others still run.
        var name = "cli-dead-" + Guid.NewGuid().ToString("N")[..8];
        var dead = await Expect(await stack.RunAsync("--json", "nodes", "register", "--name", name, "--region", "cli-dead", "--public-endpoint", "192.0.2.9:51820",
            "--public-key", DeviceKeys.Generate().PublicKey, "--core-endpoint", "unix:" + Path.Combine(stack.NodeLab.WorkDirectory, "no-core.sock"), "--capacity", "5"), ExitCodes.Ok);
        try
        {
            var failed = await Expect(await stack.RunAsync("doctor"), ExitCodes.CheckFailed,
                $"PASS  core/{VpnStackFixture.NodeName}: healthy, synced", $"FAIL  core/{name}: no status: 502 node_unavailable", "checks FAILED");
            Capture("cli-doctor-failing.txt", failed);
            var json = await Expect(await stack.RunAsync("doctor", "--json"), ExitCodes.CheckFailed);
            await stack.CheckAsync(json.Json["ok"]!.GetValue<bool>() == false
                && json.Json["checks"]!.AsArray().Any(c => c!["name"]!.GetValue<string>() == "core/" + name && !c["ok"]!.GetValue<bool>()), json.Describe());
            await Expect(await stack.RunAsync("nodes", "list"), ExitCodes.Ok, name, "no answer (node_unavailable)");
        }
        finally
        {
            await RemoveNodeAsync(dead.Json["id"]!.GetValue<string>(), ct);
        }
    }

    /// <summary>Drain and delete a node a test registered (no sessions: it is in a region of its own).</summary>
    private async Task RemoveNodeAsync(string id, CancellationToken ct)
    {
        await stack.ExpectStatusAsync(await stack.EntryClient.AdminAsync(HttpMethod.Post, $"/v1/admin/nodes/{id}/drain", new { }, ct), HttpStatusCode.OK);
        await stack.ExpectStatusAsync(await stack.EntryClient.AdminAsync(HttpMethod.Delete, $"/v1/admin/nodes/{id}", cancellationToken: ct), HttpStatusCode.NoContent);
    }

    private Task<VpnctlRun> Expect(VpnctlRun run, int exitCode, params string[] stdout) => Expect(run, exitCode, null, stdout);

    /// <summary>The exit code, and this on stderr (an error line and its explanation).</summary>
    private Task<VpnctlRun> ExpectError(VpnctlRun run, int exitCode, string err) => Expect(run, exitCode, err, []);

    private async Task<VpnctlRun> Expect(VpnctlRun run, int exitCode, string? err, string[] stdout)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(run.Describe());
        var missing = stdout.Where(s => !run.Out.Contains(s, StringComparison.Ordinal)).ToList();
        await stack.CheckAsync(run.ExitCode == exitCode && missing.Count == 0 && (err is null || run.Err.Contains(err, StringComparison.Ordinal)),
            $"expected exit {exitCode}{(missing.Count == 0 ? "" : ", stdout with: " + string.Join(" | ", missing))}{(err is null ? "" : ", stderr with: " + err)}\n{run.Describe()}");
        return run;
    }

    private static async Task<VpnctlRun> UntilAsync(Func<Task<VpnctlRun>> run, Func<VpnctlRun, bool> done, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            var result = await run();
            if (done(result) || DateTime.UtcNow > deadline)
            {
                return result;
            }
            await Task.Delay(500, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>The output into $VPNCTL_CAPTURE_DIR/<paramref name="file"/> when set (the closing note's real outputs).</summary>
    private static void Capture(string file, VpnctlRun run)
    {
        if (Environment.GetEnvironmentVariable("VPNCTL_CAPTURE_DIR") is { Length: > 0 } directory)
        {
            File.WriteAllText(Path.Combine(directory, file), $"$ vpnctl {string.Join(' ', run.Args)}\n{run.Out}{run.Err}(exit {run.ExitCode})\n");
        }
    }
}
