namespace Vpn.Entry.Tests.Audit;

/// <summary>
/// GET /v1/admin/audit/export: the audit trail streamed oldest first as NDJSON or CSV, filtered by time and kind, and
/// under strict redaction without a single customer, session or device id (while mode off shows them: the redaction,
/// not the data, is what removes them).
/// </summary>
public sealed class AuditExportTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(StoreKind.InMemory)]
    [InlineData(StoreKind.Postgres)]
    public async Task Export_Strict_OldestFirstFilteredAndWithoutIdentifiers(StoreKind store)
    {
        await using var stack = await TestStack.StartAsync(store, new Dictionary<string, string?> { ["APP_LOG_REDACTION_MODE"] = "strict" });
        var (customer, sessionId) = await SessionLifecycleAsync(stack);

        var all = await ExportAsync(stack, "");
        var lines = all.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(lines, e => e.GetProperty("action").GetString() == "subscription.set");
        Assert.Contains(lines, e => e.GetProperty("action").GetString() == "plan.upserted");
        var times = lines.Select(e => e.GetProperty("occurred_at").GetDateTimeOffset()).ToList();
        Assert.Equal(times.Order(), times);
        foreach (var id in new[] { customer.Id.ToString(), customer.DeviceId.ToString(), sessionId })
        {
            Assert.DoesNotContain(id, all, StringComparison.OrdinalIgnoreCase);
        }
        Assert.Contains("[redacted]", all, StringComparison.Ordinal);

        var subscriptions = await ExportAsync(stack, "?kind=subscription");
        Assert.All(subscriptions.Split('\n', StringSplitOptions.RemoveEmptyEntries),
            l => Assert.StartsWith("subscription.", JsonDocument.Parse(l).RootElement.GetProperty("action").GetString(), StringComparison.Ordinal));
        Assert.Empty(await ExportAsync(stack, "?since=" + Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(5).ToString("O"))));
        Assert.Empty(await ExportAsync(stack, "?until=2020-01-01T00:00:00Z"));

        var csv = await ExportAsync(stack, "?format=csv&kind=subscription.set", "text/csv");
        var rows = csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("occurred_at,actor,action,subject,details", rows[0]);
        Assert.Single(rows.Skip(1));
        Assert.Contains(",subscription.set,[redacted],", rows[1], StringComparison.Ordinal);
        Assert.DoesNotContain(customer.Id.ToString(), csv, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_RedactionOff_ShowsTheStoredIdentifiers()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_LOG_REDACTION_MODE"] = "off" });
        var (customer, _) = await SessionLifecycleAsync(stack);

        Assert.Contains(customer.Id.ToString(), await ExportAsync(stack, "?kind=subscription"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("?since=yesterday")]
    [InlineData("?until=2026-13-40")]
    [InlineData("?kind=Session;drop")]
    [InlineData("?format=xml")]
    public async Task Export_BadFilter_400InvalidRequest(string query)
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory);

        var problem = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/audit/export" + query), 400);

        Assert.Equal("invalid_request", problem.GetProperty("code").GetString());
    }

    private static async Task<(Customer Customer, string SessionId)> SessionLifecycleAsync(TestStack stack)
    {
        var customer = await stack.SeedCustomerAsync();
        var session = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 201);
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
        return (customer, session.GetProperty("session_id").GetString()!);
    }

    private static async Task<string> ExportAsync(TestStack stack, string query, string mediaType = "application/x-ndjson")
    {
        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, "/v1/admin/audit/export" + query), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync(Ct);
    }
}
