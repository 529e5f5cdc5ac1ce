using Vpn.Cli.Output;

namespace Vpn.Cli.Admin;

/// <summary>
/// vpnctl subscriptions set | show | history | export, and vpnctl customers show: /v1/admin/subscriptions.
/// </summary>
public static class SubscriptionCommands
{
    public static readonly string[] Statuses = ["trialing", "active", "past_due", "canceled", "expired"];

    public static Command Create(GlobalOptions options, CliContext context)
    {
        var customer = new Argument<string>("customer") { Description = "the customer's id (UUID)" };
        var plan = new Option<string>("--plan") { Description = "the plan's code", Required = true };
        var status = new Option<string>("--status") { Description = "trialing, active, past_due, canceled or expired", DefaultValueFactory = _ => "active" };
        status.AcceptOnlyFromAmong(Statuses);
        var set = new Command("set", "give a customer a plan and status (the previous period is closed)").With(customer, plan, status)
            .Handle(options, context, async run =>
            {
                using var http = run.Admin();
                var subscription = (await http.PostAsync("/v1/admin/subscriptions", new JsonObject
                {
                    ["customer_id"] = run.Get(customer),
                    ["plan_code"] = run.Get(plan),
                    ["status"] = run.Get(status),
                }, run.CancellationToken)).EnsureObject();
                run.Print(subscription, w => w.WriteLine($"customer {subscription.Str("customer_id")}: plan {subscription.Str("plan_code")}, {subscription.Str("status")} since {subscription.Str("started_at")}"));
                return ExitCodes.Ok;
            });

        var show = new Command("show", "a customer's current subscription").With(customer).Handle(options, context, async run =>
        {
            using var http = run.Admin();
            var subscription = (await http.GetAsync($"/v1/admin/subscriptions/{Segment(run.Get(customer))}", run.CancellationToken)).EnsureObject();
            run.Print(subscription, w => WriteTable(w, [subscription]));
            return ExitCodes.Ok;
        });

        var history = new Command("history", "every subscription period of a customer, oldest first").With(customer).Handle(options, context, async run =>
        {
            using var http = run.Admin();
            var periods = (await http.GetAsync($"/v1/admin/subscriptions/{Segment(run.Get(customer))}/history", run.CancellationToken)).EnsureObject();
            run.Print(periods, w => WriteTable(w, periods.Items()));
            return ExitCodes.Ok;
        });

        var output = new Option<FileInfo>("--out") { Description = "the CSV file to write (replaced if it exists)", Required = true };
        var filterStatus = new Option<string?>("--status") { Description = "only subscriptions in this status" };
        filterStatus.AcceptOnlyFromAmong(Statuses);
        var filterPlan = new Option<string?>("--plan") { Description = "only subscriptions of this plan" };
        var export = new Command("export", "every current subscription as CSV (streamed from entry)").With(output, filterStatus, filterPlan)
            .Handle(options, context, run => ExportAsync(run, run.Get(output)!, run.Get(filterStatus), run.Get(filterPlan)));

        return new Command("subscriptions", "customers' subscriptions").With(set, show, history, export);
    }

    private static async Task<int> ExportAsync(Invocation run, FileInfo output, string? status, string? plan)
    {
        var query = new List<string>();
        if (status is not null)
        {
            query.Add("status=" + Uri.EscapeDataString(status));
        }
        if (plan is not null)
        {
            query.Add("plan_code=" + Uri.EscapeDataString(plan));
        }
        using var http = run.Admin();
        // Into a temporary file beside the target, moved over it once complete: an interrupted export leaves no half file.
        var partial = Path.Combine(output.DirectoryName ?? ".", $".{output.Name}.{Environment.ProcessId}.partial");
        long bytes;
        try
        {
            await using (var file = new FileStream(partial, new FileStreamOptions
                {
                    // Customer ids and plans: readable by the operator only, as the client's own files are.
                    Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Client.PrivateFiles.OwnerOnly,
                }))
            {
                bytes = await http.DownloadAsync("/v1/admin/subscriptions/export" + (query.Count == 0 ? "" : "?" + string.Join('&', query)), file, run.CancellationToken);
            }
            File.Move(partial, output.FullName, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(ExitCodes.Usage, $"cannot write {output.FullName}: {e.Message}");
        }
        finally
        {
            File.Delete(partial);
        }
        var rows = File.ReadLines(output.FullName).Count() - 1;
        run.Print(new JsonObject { ["file"] = output.FullName, ["rows"] = rows, ["bytes"] = bytes },
            w => w.WriteLine($"wrote {rows} subscription(s) to {output.FullName} ({bytes} bytes)"));
        return ExitCodes.Ok;
    }

    public static void WriteTable(TextWriter w, IEnumerable<JsonNode?> subscriptions)
    {
        var table = new Table("CUSTOMER", "PLAN", "STATUS", "MAX DEVICES", "REGIONS", "STARTED", "ENDED");
        foreach (var s in subscriptions)
        {
            table.Add(s.Str("customer_id"), s.Str("plan_code"), s.Str("status"), s.Num("max_devices")?.ToString(CultureInfo.InvariantCulture),
                PlanCommands.Regions(s), s.Str("started_at"), s.Str("ended_at"));
        }
        table.WriteTo(w);
    }

    /// <summary>A path segment: entry answers 400 invalid_request for what is not a UUID, so it is passed on as typed, escaped.</summary>
    public static string Segment(string value) => Uri.EscapeDataString(value);
}

/// <summary>
/// vpnctl customers show ID: entry has no admin read of a customer as such (only erasure), so this is the customer's
/// subscription history — what an operator looks a customer up for.
/// </summary>
public static class CustomerCommands
{
    public static Command Create(GlobalOptions options, CliContext context)
    {
        var customer = new Argument<string>("customer") { Description = "the customer's id (UUID)" };
        var show = new Command("show", "a customer by id: current subscription and its history").With(customer).Handle(options, context, async run =>
        {
            using var http = run.Admin();
            var id = SubscriptionCommands.Segment(run.Get(customer));
            var history = (await http.GetAsync($"/v1/admin/subscriptions/{id}/history", run.CancellationToken)).EnsureObject().Items();
            var current = history.Count > 0 ? history[^1] : null;
            run.Print(new JsonObject { ["customer_id"] = run.Get(customer), ["subscription"] = current?.DeepClone(), ["history"] = history.DeepClone() }, w =>
            {
                w.WriteLine($"customer:      {run.Get(customer)}");
                w.WriteLine($"subscription:  {current.Str("plan_code")}, {current.Str("status")} since {current.Str("started_at")} ({current.Num("max_devices")} devices, regions {PlanCommands.Regions(current)})");
                w.WriteLine($"history:       {history.Count} period(s)");
                SubscriptionCommands.WriteTable(w, history);
            });
            return ExitCodes.Ok;
        });
        var reset = new Option<bool>("--reset") { Description = "start the current billing period's use again from zero (audited)" };
        var usage = new Command("usage", "a customer's data use in its current billing period, against its plan's quota").With(customer, reset)
            .Handle(options, context, async run =>
            {
                using var http = run.Admin();
                var path = $"/v1/admin/customers/{SubscriptionCommands.Segment(run.Get(customer))}/usage";
                var answer = (run.Get(reset) ? await http.PostAsync(path + "/reset", null, run.CancellationToken)
                    : await http.GetAsync(path, run.CancellationToken)).EnsureObject();
                run.Print(answer, w => w.WriteLine($"{(run.Get(reset) ? "reset; " : "")}used {Usage.Describe(answer)}"));
                return ExitCodes.Ok;
            });
        return new Command("customers", "customers (lookup by id, data use)").With(show, usage);
    }
}

/// <summary>How a usage object ({"used_bytes", "limit_bytes", "period_start", "resets_at"}) reads in text.</summary>
public static class Usage
{
    public static string Describe(JsonNode? usage) =>
        usage.Num("limit_bytes") is { } limit
            ? $"{Bytes(usage.Num("used_bytes") ?? 0)} of {Bytes(limit)} this period (resets {usage.Str("resets_at")})"
            : $"{Bytes(usage.Num("used_bytes") ?? 0)} this period, no quota (period resets {usage.Str("resets_at")})";

    /// <summary>Binary units, one decimal: "935.5 KiB", "10.0 GiB"; plain bytes below 1 KiB.</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if (bytes < 1024)
        {
            return bytes.ToString(CultureInfo.InvariantCulture) + " B";
        }
        var value = (double)bytes;
        var unit = -1;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return value.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[unit];
    }
}
