using Vpn.Cli.Output;

namespace Vpn.Cli.Admin;

/// <summary>vpnctl plans list | set: GET/POST /v1/admin/plans.</summary>
public static class PlanCommands
{
    public static Command Create(GlobalOptions options, CliContext context)
    {
        var list = new Command("list", "the plans: code, name, device limit, allowed regions").Handle(options, context, async run =>
        {
            using var http = run.Admin();
            var plans = (await http.GetAsync("/v1/admin/plans", run.CancellationToken)).EnsureObject();
            run.Print(plans, w =>
            {
                var table = new Table("CODE", "NAME", "MAX DEVICES", "MONTHLY DATA", "REGIONS");
                foreach (var plan in plans.Items())
                {
                    table.Add(plan.Str("code"), plan.Str("name"), plan.Num("max_devices")?.ToString(CultureInfo.InvariantCulture), Quota(plan), Regions(plan));
                }
                table.WriteTo(w);
            });
            return ExitCodes.Ok;
        });

        var code = new Argument<string>("code") { Description = "the plan's code" };
        var name = new Option<string>("--name") { Description = "the plan's name", Required = true };
        var maxDevices = new Option<int>("--max-devices") { Description = "devices a customer may register", Required = true };
        var regions = new Option<string[]>("--region") { Description = "an allowed region (repeat the option for more)", Required = true, AllowMultipleArgumentsPerToken = true };
        var quota = new Option<long?>("--monthly-data-bytes")
        {
            Description = "the fair-use quota per billing period in bytes (received plus sent); without it the plan is unlimited",
        };
        var set = new Command("set", "create a plan or update the one with this code (the whole plan: an option left out is unset)")
            .With(code, name, maxDevices, regions, quota).Handle(options, context, async run =>
        {
            using var http = run.Admin();
            var plan = (await http.PostAsync("/v1/admin/plans", new JsonObject
            {
                ["code"] = run.Get(code),
                ["name"] = run.Get(name),
                ["max_devices"] = run.Get(maxDevices),
                ["allowed_regions"] = new JsonArray([.. run.Get(regions)!.Select(r => JsonValue.Create(r))]),
                ["monthly_data_bytes"] = run.Get(quota),
            }, run.CancellationToken)).EnsureObject();
            run.Print(plan, w => w.WriteLine($"plan {plan.Str("code")} ({plan.Str("name")}): {plan.Num("max_devices")} devices, {Quota(plan)} a month, regions {Regions(plan)}"));
            return ExitCodes.Ok;
        });

        return new Command("plans", "plans: device limits and allowed regions").With(list, set);
    }

    public static string Quota(JsonNode? plan) => plan.Num("monthly_data_bytes") is { } bytes ? Usage.Bytes(bytes) : "unlimited";

    public static string Regions(JsonNode? node) => string.Join(",", node.Items("allowed_regions").Select(r => r?.GetValue<string>()));
}
