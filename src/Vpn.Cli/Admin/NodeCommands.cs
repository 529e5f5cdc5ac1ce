using Vpn.Cli.Output;

namespace Vpn.Cli.Admin;

/// <summary>
/// vpnctl nodes list | show | register: GET/POST /v1/admin/nodes, with each node's core status
/// (GET /v1/admin/core/status: reconcile drift, sync) beside it.
/// </summary>
public static class NodeCommands
{
    public static Command Create(GlobalOptions options, CliContext context)
    {
        var noCore = new Option<bool>("--no-core") { Description = "do not ask each node's core for its status (drift, sync)" };
        var list = new Command("list", "the registered nodes: health, heartbeat, load/capacity, draining, reconcile drift").With(noCore)
            .Handle(options, context, run => ListAsync(run, run.Get(noCore)));

        var idOrName = new Argument<string>("node") { Description = "the node's id or name" };
        var show = new Command("show", "one node, with its core's own status").With(idOrName)
            .Handle(options, context, run => ShowAsync(run, run.Get(idOrName)));

        var migrate = new Option<bool>("--migrate") { Description = "entry also moves the node's sessions itself, in batches (each keeps its key)" };
        var drain = new Command("drain", "take a node out of selection: no new sessions; its sessions move on their next reconnect").With(idOrName, migrate)
            .Handle(options, context, run => DrainAsync(run, run.Get(idOrName), "drain", new JsonObject { ["migrate"] = run.Get(migrate) }));
        var undrain = new Command("undrain", "make a drained node a candidate again").With(idOrName)
            .Handle(options, context, run => DrainAsync(run, run.Get(idOrName), "undrain", null));
        var remove = new Command("delete", "delete a drained node without live sessions (stop its core afterwards)").With(idOrName)
            .Handle(options, context, async run =>
            {
                using var http = run.Admin();
                var node = await FindAsync(http, run.Get(idOrName), run.CancellationToken);
                var answer = await http.SendAsync(HttpMethod.Delete, $"/v1/admin/nodes/{node.Str("id")}", null, null, run.CancellationToken);
                if (!answer.IsSuccess)
                {
                    throw ApiProblemException.From(answer.Status, answer.ContentType, answer.Body);
                }
                run.Print(new JsonObject { ["deleted"] = node.Str("id") }, w => w.WriteLine($"deleted node {node.Str("name")} ({node.Str("id")})"));
                return ExitCodes.Ok;
            });

        return new Command("nodes", "the node registry").With(list, show, CreateRegister(options, context), drain, undrain, remove);
    }

    private static async Task<int> DrainAsync(Invocation run, string idOrName, string verb, JsonObject? body)
    {
        using var http = run.Admin();
        var node = await FindAsync(http, idOrName, run.CancellationToken);
        var changed = (await http.PostAsync($"/v1/admin/nodes/{node.Str("id")}/{verb}", body, run.CancellationToken)).EnsureObject();
        run.Print(changed, w => w.WriteLine(changed.Bool("draining") == true
            ? $"node {changed.Str("name")} is draining since {changed.Str("draining_since")}{(changed.Bool("drain_migrate") == true ? "; entry moves its sessions" : "; its sessions move on reconnect")}"
            : $"node {changed.Str("name")} takes new sessions again"));
        return ExitCodes.Ok;
    }

    private static async Task<int> ListAsync(Invocation run, bool noCore)
    {
        using var http = run.Admin();
        var nodes = (await http.GetAsync("/v1/admin/nodes", run.CancellationToken)).EnsureObject().Items();
        var statuses = new Dictionary<string, JsonNode>();
        if (!noCore)
        {
            foreach (var node in nodes)
            {
                statuses[node.Str("id")!] = await CoreStatusAsync(http, node.Str("id")!, run.CancellationToken);
            }
        }
        var now = DateTimeOffset.UtcNow;
        var json = new JsonObject
        {
            ["items"] = new JsonArray([.. nodes.Select(n =>
            {
                var copy = n!.DeepClone();
                if (statuses.TryGetValue(n.Str("id")!, out var status))
                {
                    copy["core"] = status.DeepClone();
                }
                return copy;
            })]),
        };
        run.Print(json, w =>
        {
            if (nodes.Count == 0)
            {
                w.WriteLine("no nodes registered (vpnctl nodes register --help)");
                return;
            }
            var table = new Table("ID", "NAME", "REGION", "HEALTH", "HEARTBEAT", "LOAD", "DRAINING", "CORE", "DRIFT +/-/~");
            foreach (var node in nodes)
            {
                statuses.TryGetValue(node.Str("id")!, out var core);
                table.Add(node.Str("id"), node.Str("name"), Location(node), node.Bool("healthy") == true ? "healthy" : "unhealthy",
                    Json.Ago(node.Str("last_heartbeat_at"), now), Load(node), Json.YesNo(node.Bool("draining")) + (node.Bool("drain_migrate") == true ? " (migrate)" : ""),
                    noCore ? "-" : CoreSummary(core), noCore ? "-" : Drift(core));
            }
            table.WriteTo(w);
        });
        return ExitCodes.Ok;
    }

    private static async Task<int> ShowAsync(Invocation run, string idOrName)
    {
        using var http = run.Admin();
        var node = await FindAsync(http, idOrName, run.CancellationToken);
        var core = await CoreStatusAsync(http, node.Str("id")!, run.CancellationToken);
        var json = node.DeepClone();
        json["core"] = core.DeepClone();
        run.Print(json, w =>
        {
            var now = DateTimeOffset.UtcNow;
            Field(w, "id", node.Str("id"));
            Field(w, "name", node.Str("name"));
            Field(w, "location", Location(node) + (node.Str("pool") is { } pool ? $" pool {pool}" : ""));
            Field(w, "public endpoint", node.Str("public_endpoint"));
            Field(w, "public key", node.Str("public_key"));
            Field(w, "core endpoint", node.Str("core_endpoint"));
            Field(w, "health", (node.Bool("healthy") == true ? "healthy" : "unhealthy") + ", heartbeat " + Json.Ago(node.Str("last_heartbeat_at"), now));
            Field(w, "load", Load(node));
            Field(w, "draining", node.Bool("draining") == true ? $"yes since {node.Str("draining_since")}{(node.Bool("drain_migrate") == true ? ", entry migrates its sessions" : "")}" : "no");
            if (core["error"] is not null)
            {
                Field(w, "core", "no status: " + core.Str("error"));
                return;
            }
            Field(w, "core", CoreSummary(core));
            Field(w, "dataplane", $"{core.Str("dataplane_mode")}, NAT {core.Str("nat_driver")}, pools {core.Str("client_pool")} {core.Str("client_pool_v6")}");
            Field(w, "reconcile", $"{core.Num("reconcile_passes")} passes, {core.Num("reconcile_failures")} failed, last {Json.Ago(core.Str("last_reconcile_at"), now)}");
            Field(w, "drift", $"{core.Num("reconcile_peers_added")} added, {core.Num("reconcile_peers_removed")} removed, {core.Num("reconcile_peers_corrected")} corrected");
            var resolver = core["resolver"];
            Field(w, "resolver", resolver.Bool("checked") != true ? "not checked" : resolver.Bool("healthy") == true ? "answering" : "failing: " + resolver.Str("detail"));
            var drops = core.Items("filter_drops").Where(d => d.Num("packets") > 0).Select(d => $"{d.Str("name")}={d.Num("packets")}").ToList();
            Field(w, "filter drops", drops.Count == 0 ? "none" : string.Join(", ", drops));
        });
        return ExitCodes.Ok;
    }

    private static Command CreateRegister(GlobalOptions options, CliContext context)
    {
        Option<string> Required(string name, string description) => new(name) { Description = description, Required = true };
        var name = Required("--name", "the node's unique name (register again with the same name to update it)");
        var region = Required("--region", "region code, e.g. eu-west");
        var country = new Option<string?>("--country") { Description = "ISO 3166 country code, e.g. DE" };
        var city = new Option<string?>("--city") { Description = "city code, e.g. fra" };
        var pool = new Option<string?>("--pool") { Description = "pool, e.g. streaming" };
        var endpoint = Required("--public-endpoint", "host:port clients dial (WireGuard UDP)");
        var key = Required("--public-key", "the node's WireGuard public key (base64)");
        var core = Required("--core-endpoint", "where entry dials the node's core: https://host:port or unix:/path");
        var capacity = new Option<int>("--capacity") { Description = "most sessions at once", Required = true };
        return new Command("register", "register a node, or update the one with this name").With(name, region, country, city, pool, endpoint, key, core, capacity)
            .Handle(options, context, async run =>
            {
                using var http = run.Admin();
                var body = new JsonObject
                {
                    ["name"] = run.Get(name),
                    ["region"] = run.Get(region),
                    ["country_code"] = run.Get(country),
                    ["city_code"] = run.Get(city),
                    ["pool"] = run.Get(pool),
                    ["public_endpoint"] = run.Get(endpoint),
                    ["public_key"] = run.Get(key),
                    ["core_endpoint"] = run.Get(core),
                    ["capacity"] = run.Get(capacity),
                };
                var answer = await http.PostAsync("/v1/admin/nodes", body, run.CancellationToken);
                var node = answer.EnsureObject();
                run.Print(node, w => w.WriteLine($"{(answer.Status == HttpStatusCode.Created ? "registered" : "updated")} node {node.Str("name")} ({node.Str("id")}) in {Location(node)}, capacity {node.Num("capacity")}"));
                return ExitCodes.Ok;
            });
    }

    /// <summary>A node by id or by name, from the list (entry has no GET of one node).</summary>
    public static async Task<JsonNode> FindAsync(EntryHttp http, string idOrName, CancellationToken cancellationToken)
    {
        var nodes = (await http.GetAsync("/v1/admin/nodes", cancellationToken)).EnsureObject().Items();
        return nodes.FirstOrDefault(n => string.Equals(n.Str("id"), idOrName, StringComparison.OrdinalIgnoreCase))
            ?? nodes.FirstOrDefault(n => n.Str("name") == idOrName)
            ?? throw new CliException(ExitCodes.Refused, $"404 node_not_found: no node has the id or name '{idOrName}'");
    }

    /// <summary>The core's status, or <c>{"error": "…"}</c> saying why there is none (a dead core is a finding, not a failure of the listing).</summary>
    public static async Task<JsonNode> CoreStatusAsync(EntryHttp http, string nodeId, CancellationToken cancellationToken)
    {
        var answer = await http.GetAsync($"/v1/admin/core/status?node_id={Uri.EscapeDataString(nodeId)}", cancellationToken);
        if (answer.IsSuccess && answer.Json is JsonObject status)
        {
            return status;
        }
        var problem = ApiProblemException.From(answer.Status, answer.ContentType, answer.Body);
        return new JsonObject { ["error"] = problem.Message, ["status"] = problem.Status, ["code"] = problem.Code };
    }

    public static string CoreSummary(JsonNode? core) => core switch
    {
        null => "-",
        _ when core["error"] is not null => "no answer (" + core.Str("code") + ")",
        _ => (core.Bool("healthy") == true ? "healthy" : "unhealthy") + (core.Bool("synced") == true ? ", synced" : ", not synced")
            + $", {core.Num("active_peers")} peer{(core.Num("active_peers") == 1 ? "" : "s")}",
    };

    private static string Drift(JsonNode? core) => core is null || core["error"] is not null ? "-"
        : $"{core.Num("reconcile_peers_added")}/{core.Num("reconcile_peers_removed")}/{core.Num("reconcile_peers_corrected")}";

    private static string Location(JsonNode? node) =>
        string.Join('/', new[] { node.Str("region"), node.Str("country_code"), node.Str("city_code") }.Where(s => s is not null));

    private static string Load(JsonNode? node)
    {
        var peers = node.Num("active_peer_count") ?? 0;
        var capacity = node.Num("capacity") ?? 0;
        return capacity > 0 ? $"{peers}/{capacity} ({100.0 * peers / capacity:0}%)" : $"{peers}/?";
    }

    private static void Field(TextWriter w, string name, string? value) => w.WriteLine($"{name + ":",-17}{value ?? "-"}");
}
