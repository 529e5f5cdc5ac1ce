namespace Vpn.Entry.Tests.Audit;

/// <summary>The log line of each audit event, from a running entry, per APP_LOG_REDACTION_MODE.</summary>
public sealed class AuditLogRedactionTests
{
    private const string AuditCategory = "Vpn.Entry.Audit.LoggingAuditLog";

    private static async Task<TestStack> StartAsync(StoreKind store, string mode)
    {
        var stack = await TestStack.StartAsync(store, new Dictionary<string, string?> { ["APP_LOG_REDACTION_MODE"] = mode });
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/plans", new { code = "basic", name = "Basic", max_devices = 5, allowed_regions = new[] { "eu-west" } }), 200);
        return stack;
    }

    private static async Task SetSubscriptionAsync(TestStack stack, Guid customer, string status = "active") =>
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = customer, plan_code = "basic", status }), 200);

    private static List<CapturedLog> AuditLines(LogCapture capture, string action) =>
        [.. capture.Lines.Where(l => l.Category == AuditCategory && l.EventId.Id == 600 && l.Message.StartsWith($"Audit {action} ", StringComparison.Ordinal))];

    private static string Subject(CapturedLog line) => (string)line.State.Single(p => p.Key == "Subject").Value!;

    /// <summary>No captured line, message or structured value, contains any of <paramref name="identifiers"/> (in any case).</summary>
    private static void AssertNoLineContains(LogCapture capture, params string[] identifiers)
    {
        foreach (var identifier in identifiers)
        {
            Assert.All(capture.Lines, l => Assert.DoesNotContain(identifier, l.AllText, StringComparison.OrdinalIgnoreCase));
        }
    }

    [Theory]
    [InlineData(StoreKind.InMemory)]
    [InlineData(StoreKind.Postgres)]
    public async Task Strict_SubscriptionChange_AuditLineWithoutCustomerId(StoreKind store)
    {
        await using var stack = await StartAsync(store, "strict");
        var capture = LogCapture.AttachTo(stack);
        var customer = Guid.NewGuid();

        await SetSubscriptionAsync(stack, customer);

        var line = Assert.Single(AuditLines(capture, "subscription.set"));
        Assert.Equal(LogLevel.Information, line.Level);
        Assert.Equal("Audit subscription.set by admin on [redacted]", line.Message);
        Assert.Equal("[redacted]", Subject(line));
        // Nothing entry logged while serving the request names the customer.
        AssertNoLineContains(capture, customer.ToString(), customer.ToString("N"));
    }

    [Theory]
    [InlineData(StoreKind.InMemory)]
    [InlineData(StoreKind.Postgres)]
    public async Task Strict_CustomerJourney_NoIdentifierInAnyLogLine(StoreKind store)
    {
        await using var stack = await StartAsync(store, "strict");
        var capture = LogCapture.AttachTo(stack);
        var c = await stack.SeedCustomerAsync(plan: "journey");
        var token = stack.TokenFor(c.Id);
        var started = await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" }), 201);
        var reconnected = await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/sessions/reconnect",
            new { session_key = started.GetProperty("session_key").GetString() }), 200);
        var publicKey = TestStack.NewKey();
        var phone = await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/devices", new { name = "phone", public_key = publicKey }), 201);
        await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Delete, $"/v1/devices/{phone.GetProperty("id").GetGuid()}"), 204);
        // Ends the session through the entitlement enforcer: a session.terminated audit event about the session.
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = c.Id, plan_code = "journey", status = "canceled" }), 200);
        await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/auth/logout"), 204);

        foreach (var action in new[] { "subscription.set", "session.terminated", "auth.logout" })
        {
            var lines = AuditLines(capture, action);
            Assert.NotEmpty(lines);
            Assert.All(lines, l => Assert.Equal("[redacted]", Subject(l)));
        }
        string[] identifiers =
        [
            c.Id.ToString(), c.Id.ToString("N"), c.DeviceId.ToString(), phone.GetProperty("id").GetString()!, publicKey,
            started.GetProperty("session_id").GetString()!, started.GetProperty("session_key").GetString()!,
            reconnected.GetProperty("session_key").GetString()!, token,
        ];
        AssertNoLineContains(capture, identifiers);
    }

    [Fact]
    public async Task Off_SubscriptionChange_AuditLineShowsCustomerId()
    {
        await using var stack = await StartAsync(StoreKind.InMemory, "off");
        var capture = LogCapture.AttachTo(stack);
        var customer = Guid.NewGuid();

        await SetSubscriptionAsync(stack, customer);

        var line = Assert.Single(AuditLines(capture, "subscription.set"));
        Assert.Equal($"Audit subscription.set by admin on {customer}", line.Message);
        Assert.Equal(customer.ToString(), Subject(line));
    }

    [Fact]
    public async Task Partial_SubscriptionChanges_SamePseudonymPerCustomer_NoId()
    {
        await using var stack = await StartAsync(StoreKind.InMemory, "partial");
        var capture = LogCapture.AttachTo(stack);
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();

        await SetSubscriptionAsync(stack, a);
        await SetSubscriptionAsync(stack, a, "past_due");
        await SetSubscriptionAsync(stack, b);

        var subjects = AuditLines(capture, "subscription.set").Select(Subject).ToList();
        Assert.Equal(3, subjects.Count);
        Assert.Equal(subjects[0], subjects[1]);
        Assert.NotEqual(subjects[0], subjects[2]);
        Assert.DoesNotContain(subjects, s => s is "[redacted]" or "-");
        AssertNoLineContains(capture, a.ToString(), b.ToString());
    }
}
