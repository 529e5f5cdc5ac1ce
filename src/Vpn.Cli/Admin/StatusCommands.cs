using Vpn.Cli.Output;

namespace Vpn.Cli.Admin;

/// <summary>
/// vpnctl status (readiness and each core's status, for reading) and vpnctl doctor: the gates of
/// deploy/k8s/smoke-check.sh as PASS/FAIL lines, exit 1 when any fails.
/// </summary>
public static class StatusCommands
{
    public static Command CreateStatus(GlobalOptions options, CliContext context) =>
        new Command("status", "entry's readiness (/readyz and the admin readiness report) and every node's core status").Handle(options, context, async run =>
        {
            using var anonymous = run.Anonymous();
            using var http = run.Admin();
            var readyz = await anonymous.GetAsync("/readyz", run.CancellationToken);
            var readiness = await http.GetAsync("/v1/admin/readiness", run.CancellationToken);
            var report = readiness.Status is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable && readiness.Json is JsonObject r ? r : readiness.EnsureObject();
            var nodes = (await http.GetAsync("/v1/admin/nodes", run.CancellationToken)).EnsureObject().Items();
            var cores = new JsonArray();
            foreach (var node in nodes)
            {
                var core = await NodeCommands.CoreStatusAsync(http, node.Str("id")!, run.CancellationToken);
                core["node_name"] ??= node.Str("name");
                cores.Add(core);
            }
            var ready = readyz.Status == HttpStatusCode.OK && report.Bool("ready") == true;
            var json = new JsonObject
            {
                ["ready"] = ready,
                ["readyz"] = new JsonObject { ["status"] = (int)readyz.Status, ["body"] = readyz.Json?.DeepClone() },
                ["readiness"] = report.DeepClone(),
                ["cores"] = cores,
            };
            run.Print(json, w =>
            {
                w.WriteLine($"entry {run.EntryUrl}: /readyz {(int)readyz.Status} {readyz.Json.Str("status")}, readiness {(report.Bool("ready") == true ? "ready" : "NOT READY")}");
                foreach (var check in report.Items("checks"))
                {
                    w.WriteLine($"  {(check.Bool("ok") == true ? "ok  " : "FAIL")}  {check.Str("name")}: {check.Str("detail")}");
                }
                var table = new Table("NODE", "CORE", "DATAPLANE", "NAT", "RECONCILES", "LAST RECONCILE", "RESOLVER");
                foreach (var core in cores.OfType<JsonNode>())
                {
                    table.Add(core.Str("node_name"), NodeCommands.CoreSummary(core), core.Str("dataplane_mode"), core.Str("nat_driver"),
                        core["error"] is null ? $"{core.Num("reconcile_passes")} ({core.Num("reconcile_failures")} failed)" : null,
                        core["error"] is null ? Json.Ago(core.Str("last_reconcile_at"), DateTimeOffset.UtcNow) : null, Resolver(core));
                }
                if (cores.Count > 0)
                {
                    w.WriteLine();
                    table.WriteTo(w);
                }
            });
            return ready ? ExitCodes.Ok : ExitCodes.CheckFailed;
        });

    public static Command CreateDoctor(GlobalOptions options, CliContext context)
    {
        var production = new Option<bool>("--production")
        {
            Description = "also demand what production needs: strict log redaction, TLS (or unix sockets) to the cores, cores that check their resolver",
        };
        return new Command("doctor", "the post-deploy gates of deploy/k8s/smoke-check.sh: PASS/FAIL lines, exit 1 if any fails").With(production)
            .Handle(options, context, async run =>
            {
                var checks = await DoctorChecks.RunAsync(run, run.Get(production));
                var failed = checks.Count(c => !c.Ok);
                var json = new JsonObject
                {
                    ["ok"] = failed == 0,
                    ["checks"] = new JsonArray([.. checks.Select(c => new JsonObject { ["name"] = c.Name, ["ok"] = c.Ok, ["detail"] = c.Detail })]),
                };
                run.Print(json, w =>
                {
                    foreach (var check in checks)
                    {
                        w.WriteLine($"{(check.Ok ? "PASS" : "FAIL")}  {check.Name}: {check.Detail}");
                    }
                    w.WriteLine(failed == 0 ? $"doctor: all {checks.Count} checks passed" : $"doctor: {failed} of {checks.Count} checks FAILED");
                });
                return failed == 0 ? ExitCodes.Ok : ExitCodes.CheckFailed;
            });
    }

    public static string Resolver(JsonNode? core)
    {
        var resolver = core?["resolver"];
        return core?["error"] is not null ? "-" : resolver.Bool("checked") != true ? "not checked"
            : resolver.Bool("healthy") == true ? "answering" : "unhealthy: " + (string.IsNullOrEmpty(resolver.Str("detail")) ? "no answer yet" : resolver.Str("detail"));
    }
}

public sealed record DoctorCheck(string Name, bool Ok, string Detail);

/// <summary>The smoke check's gates, one by one, each a <see cref="DoctorCheck"/>; an answer that is missing fails its gate and the rest still run.</summary>
public static class DoctorChecks
{
    public static async Task<List<DoctorCheck>> RunAsync(Invocation run, bool production)
    {
        var checks = new List<DoctorCheck>();
        void Add(string name, bool ok, string detail) => checks.Add(new DoctorCheck(name, ok, detail));
        using var anonymous = run.Anonymous();
        using var http = run.Admin();
        var ct = run.CancellationToken;

        async Task<EntryAnswer?> Get(EntryHttp client, string path, string name)
        {
            try
            {
                return await client.GetAsync(path, ct);
            }
            catch (CliException e)
            {
                Add(name, false, e.Message);
                return null;
            }
        }

        if (await Get(anonymous, "/healthz", "healthz") is { } healthz)
        {
            Add("healthz", healthz.Status == HttpStatusCode.OK, Answered(healthz));
        }
        if (await Get(anonymous, "/readyz", "readyz") is { } readyz)
        {
            Add("readyz", readyz.Status == HttpStatusCode.OK, Answered(readyz));
        }
        if (await Get(http, "/v1/admin/readiness", "readiness") is { } readiness)
        {
            if (readiness.Status is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable && readiness.Json is JsonObject report)
            {
                foreach (var check in report.Items("checks"))
                {
                    Add("readiness/" + check.Str("name"), check.Bool("ok") == true, check.Str("detail") ?? "");
                }
                Add("readiness", report.Bool("ready") == true, report.Bool("ready") == true ? "ready" : "entry reports NOT ready (503)");
            }
            else
            {
                Add("readiness", false, Problem(readiness));
            }
        }
        if (await Get(http, "/v1/admin/privacy/policy", "privacy") is { } privacy)
        {
            if (privacy.IsSuccess && privacy.Json is JsonObject policy)
            {
                var mode = policy.Str("log_redaction_mode");
                var days = policy["retention"].Str("terminated_sessions_days");
                Add("privacy", !production || mode == "strict", production && mode != "strict"
                    ? $"log redaction is {mode}, production needs strict" : $"log redaction {mode}, ended sessions kept {days} d");
            }
            else
            {
                Add("privacy", false, Problem(privacy));
            }
        }
        if (await Get(http, "/v1/admin/nodes", "nodes") is { } nodesAnswer)
        {
            if (!nodesAnswer.IsSuccess)
            {
                Add("nodes", false, Problem(nodesAnswer));
                return checks;
            }
            var nodes = nodesAnswer.Json.Items();
            Add("nodes", nodes.Count > 0, nodes.Count > 0 ? $"{nodes.Count} registered, {nodes.Count(n => n.Bool("healthy") == true)} healthy" : "no node registered");
            foreach (var node in nodes)
            {
                await CheckCoreAsync(http, node!, production, Add, ct);
            }
        }
        return checks;
    }

    private static async Task CheckCoreAsync(EntryHttp http, JsonNode node, bool production, Action<string, bool, string> add, CancellationToken ct)
    {
        var name = "core/" + node.Str("name");
        var endpoint = node.Str("core_endpoint") ?? "";
        if (production && !endpoint.StartsWith("https://", StringComparison.Ordinal) && !endpoint.StartsWith("unix:", StringComparison.Ordinal))
        {
            add(name, false, "cleartext core endpoint");
        }
        JsonNode core;
        try
        {
            core = await NodeCommands.CoreStatusAsync(http, node.Str("id")!, ct);
        }
        catch (CliException e)
        {
            add(name, false, e.Message);
            return;
        }
        if (core["error"] is not null)
        {
            add(name, false, "no status: " + core.Str("error"));
            return;
        }
        var resolver = StatusCommands.Resolver(core);
        if (resolver.StartsWith("unhealthy", StringComparison.Ordinal))
        {
            add(name, false, $"resolver {resolver} (clients would be connected without DNS)");
        }
        else if (core.Bool("healthy") == true && core.Bool("synced") == true)
        {
            add(name, true, $"healthy, synced, {core.Num("active_peers")} peers, {core.Str("dataplane_mode")} dataplane, resolver {resolver}");
        }
        else
        {
            add(name, false, $"{(core.Bool("healthy") == true ? "healthy" : "unhealthy")}, {(core.Bool("synced") == true ? "synced" : "not synced with entry")}");
        }
        if (production && resolver == "not checked")
        {
            add(name, false, "resolver not checked (CORE_RESOLVER_CHECK=false): a resolver that stops answering would go unnoticed");
        }
    }

    private static string Answered(EntryAnswer answer) => $"{(int)answer.Status} {answer.Json.Str("status") ?? answer.Status.ToString()}";

    private static string Problem(EntryAnswer answer)
    {
        var problem = ApiProblemException.From(answer.Status, answer.ContentType, answer.Body);
        return problem.Status == 401 ? problem.Message + " (is the admin token right?)" : problem.Message;
    }
}
