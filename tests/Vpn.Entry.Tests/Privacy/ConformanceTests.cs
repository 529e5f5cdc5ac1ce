namespace Vpn.Entry.Tests.Privacy;

/// <summary>
/// GET /v1/admin/privacy/conformance proves forgetting from the live database: it passes on entry's own schema and data,
/// and fails on a planted old row, a planted client address column (by name or by type) and a redaction mode weaker
/// than production's.
/// </summary>
public sealed class ConformanceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly Dictionary<string, string?> Strict = new() { ["APP_LOG_REDACTION_MODE"] = "strict" };

    [Theory]
    [InlineData(StoreKind.InMemory)]
    [InlineData(StoreKind.Postgres)]
    public async Task Conformance_FreshStackWithStrictLogs_Conformant(StoreKind store)
    {
        await using var stack = await TestStack.StartAsync(store, Strict);
        await EndedSessionAsync(stack);

        var report = await ConformanceAsync(stack);

        Assert.True(report.GetProperty("conformant").GetBoolean(), report.ToString());
        Assert.Equal(["ended_sessions", "audit_events", "idempotency_records", "usage_totals", "no_client_address_columns", "log_redaction"],
            report.GetProperty("checks").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        if (store == StoreKind.Postgres)
        {
            // The real schema passed the column rule: it was read from the catalog, not assumed.
            Assert.Contains("columns checked", Check(report, "no_client_address_columns").GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Conformance_PlantedOldRowsAndClientAddressColumns_NotConformant_NamingEach()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.Postgres, Strict);
        await EndedSessionAsync(stack);
        var database = stack.EntryServices.GetRequiredService<NpgsqlDataSource>();

        await ExecuteAsync(database, "update sessions set terminated_at = now() - interval '30 days' where state = 'terminated'");
        await ExecuteAsync(database, "update audit_events set occurred_at = now() - interval '400 days'");
        await ExecuteAsync(database, """
            insert into customers (id) values ('0195a8c4-0000-7000-8000-00000000c0de') on conflict do nothing;
            insert into customer_usage (customer_id, period_start, used_bytes, updated_at)
            values ('0195a8c4-0000-7000-8000-00000000c0de', now() - interval '120 days', 42, now() - interval '90 days');
            """);
        var report = await ConformanceAsync(stack);
        Assert.False(report.GetProperty("conformant").GetBoolean());
        Assert.False(Check(report, "ended_sessions").GetProperty("ok").GetBoolean());
        Assert.StartsWith("1 ended sessions", Check(report, "ended_sessions").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(Check(report, "audit_events").GetProperty("ok").GetBoolean());
        Assert.False(Check(report, "usage_totals").GetProperty("ok").GetBoolean());
        Assert.StartsWith("1 billing periods' data totals", Check(report, "usage_totals").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(Check(report, "no_client_address_columns").GetProperty("ok").GetBoolean());

        await ExecuteAsync(database, "alter table sessions add column client_ip text");
        await ExecuteAsync(database, "alter table devices add column last_seen inet");
        var columns = Check(await ConformanceAsync(stack), "no_client_address_columns");
        Assert.False(columns.GetProperty("ok").GetBoolean());
        var detail = columns.GetProperty("detail").GetString()!;
        Assert.Contains("sessions.client_ip (text)", detail, StringComparison.Ordinal);
        Assert.Contains("devices.last_seen (inet)", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Conformance_PartialRedaction_NotConformant()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_LOG_REDACTION_MODE"] = "partial" });

        var report = await ConformanceAsync(stack);

        Assert.False(report.GetProperty("conformant").GetBoolean());
        Assert.False(Check(report, "log_redaction").GetProperty("ok").GetBoolean());
        Assert.True(Check(report, "ended_sessions").GetProperty("ok").GetBoolean());
    }

    [Theory]
    [InlineData("client_ip", "text", true)]
    [InlineData("remote_addr", "text", true)]
    [InlineData("source_address", "text", true)]
    [InlineData("user_agent", "text", true)]
    [InlineData("ipv6", "text", true)]
    [InlineData("seen_from", "inet", true)]
    [InlineData("assigned_address", "text", false)]
    [InlineData("public_key", "text", false)]
    [InlineData("description", "text", false)]
    [InlineData("shipped", "text", false)]
    public void SuspectColumns_ByNameOrType(string column, string type, bool suspect)
    {
        var table = column == "assigned_address" ? "sessions" : "devices";
        Assert.Equal(suspect, PrivacyConformance.SuspectColumns([new StoredColumn(table, column, type)]).Count == 1);
    }

    private static async Task EndedSessionAsync(TestStack stack)
    {
        var customer = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 201);
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
    }

    private static async Task<JsonElement> ConformanceAsync(TestStack stack) =>
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/privacy/conformance"), 200);

    private static JsonElement Check(JsonElement report, string name) =>
        report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    private static async Task ExecuteAsync(NpgsqlDataSource database, string sql)
    {
        await using var command = database.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(Ct);
    }
}
