namespace Vpn.Entry.Tests.Privacy;

/// <summary>GET /v1/admin/privacy/policy: what entry keeps, for how long, what its logs may say, and what looks off.</summary>
public sealed class PrivacyPolicyEndpointTests
{
    private const string Path = "/v1/admin/privacy/policy";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<JsonElement> PolicyAsync(TestStack stack) => await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, Path), 200);

    private static List<string> Hints(JsonElement policy) =>
        [.. policy.GetProperty("compliance_hints").EnumerateArray().Select(h => h.GetString()!)];

    private static List<string> Names(JsonElement element) => [.. element.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)];

    // Only the test's passes: the background one would otherwise complete a pass 5 s after start.
    private static Task<TestStack> StartAsync(StoreKind store, Dictionary<string, string?>? settings = null) =>
        TestStack.StartAsync(store, settings, BackgroundCleanup.Remove);

    [Fact]
    public async Task Policy_WithoutAdminToken_401()
    {
        await using var stack = await StartAsync(StoreKind.InMemory);
        var customer = Guid.NewGuid();

        foreach (var request in new[]
        {
            new HttpRequestMessage(HttpMethod.Get, Path),
            TestStack.AsCustomer(customer, HttpMethod.Get, Path),
            TestStack.WithBearer(stack.TokenFor(customer), HttpMethod.Get, Path),
        })
        {
            var problem = await stack.SendJsonAsync(request, 401);
            Assert.Equal("unauthorized", problem.GetProperty("code").GetString());
        }
        using var wrong = new HttpRequestMessage(HttpMethod.Get, Path);
        wrong.Headers.Add("x-admin-token", TestStack.AdminToken + "x");
        await stack.SendJsonAsync(wrong, 401);
    }

    [Fact]
    public async Task Policy_Defaults_ShapeValuesAndHints_LastRunAfterPass()
    {
        await using var stack = await StartAsync(StoreKind.InMemory);

        var policy = await PolicyAsync(stack);

        Assert.Equal(["cleanup", "compliance_hints", "environment", "erasure", "kept_while_live", "log_redaction_mode", "never_stored", "retention", "store"], Names(policy));
        Assert.Equal("development", policy.GetProperty("environment").GetString());
        Assert.Equal("memory", policy.GetProperty("store").GetString());
        var retention = policy.GetProperty("retention");
        Assert.Equal(["audit_events_days", "idempotency_records_hours", "revoked_tokens", "terminated_sessions_days"], Names(retention));
        Assert.Equal(7, retention.GetProperty("terminated_sessions_days").GetInt32());
        Assert.Equal(90, retention.GetProperty("audit_events_days").GetInt32());
        Assert.Equal(24, retention.GetProperty("idempotency_records_hours").GetInt32());
        var cleanup = policy.GetProperty("cleanup");
        Assert.Equal(["interval_secs", "last_failure", "last_failure_at", "last_purged", "last_run_at"], Names(cleanup));
        Assert.Equal(3600, cleanup.GetProperty("interval_secs").GetInt32());
        Assert.Equal(JsonValueKind.Null, cleanup.GetProperty("last_run_at").ValueKind);
        Assert.Equal(JsonValueKind.Null, cleanup.GetProperty("last_purged").ValueKind);
        Assert.Equal("partial", policy.GetProperty("log_redaction_mode").GetString());
        Assert.NotEmpty(policy.GetProperty("kept_while_live").EnumerateArray());
        Assert.Contains(policy.GetProperty("never_stored").EnumerateArray(), s => s.GetString()!.Contains("private key", StringComparison.OrdinalIgnoreCase));
        var hints = Hints(policy);
        Assert.Contains(hints, h => h.Contains("redaction is partial", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(hints, h => h.Contains("not completed a pass", StringComparison.Ordinal));
        Assert.Contains(hints, h => h.Contains("In-memory store", StringComparison.Ordinal));
        Assert.DoesNotContain(hints, h => h.Contains("days;", StringComparison.Ordinal));

        var before = DateTimeOffset.UtcNow;
        await stack.EntryServices.GetRequiredService<RetentionCleanupService>().RunOnceAsync(Ct);
        var after = DateTimeOffset.UtcNow;
        var later = await PolicyAsync(stack);

        var lastRun = later.GetProperty("cleanup").GetProperty("last_run_at").GetDateTimeOffset();
        Assert.InRange(lastRun, before, after);
        Assert.Equal(TimeSpan.Zero, lastRun.Offset);
        var purged = later.GetProperty("cleanup").GetProperty("last_purged");
        Assert.Equal(["audit_events", "idempotency_records", "sessions"], Names(purged));
        Assert.All(purged.EnumerateObject(), p => Assert.Equal(0, p.Value.GetInt64()));
        Assert.DoesNotContain(Hints(later), h => h.Contains("not completed a pass", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Policy_StrictLongRetentionPostgres_NoRedactionHint_RetentionHint()
    {
        await using var stack = await StartAsync(StoreKind.Postgres, new()
        {
            ["APP_ENV"] = "staging",
            ["APP_LOG_REDACTION_MODE"] = "strict",
            ["APP_SESSION_RETENTION_DAYS"] = "31",
            ["APP_AUDIT_RETENTION_DAYS"] = "365",
            ["APP_PRIVACY_CLEANUP_SECS"] = "600",
        });
        await stack.EntryServices.GetRequiredService<RetentionCleanupService>().RunOnceAsync(Ct);

        var policy = await PolicyAsync(stack);

        Assert.Equal("staging", policy.GetProperty("environment").GetString());
        Assert.Equal("postgres", policy.GetProperty("store").GetString());
        Assert.Equal("strict", policy.GetProperty("log_redaction_mode").GetString());
        Assert.Equal(31, policy.GetProperty("retention").GetProperty("terminated_sessions_days").GetInt32());
        Assert.Equal(365, policy.GetProperty("retention").GetProperty("audit_events_days").GetInt32());
        Assert.Equal(600, policy.GetProperty("cleanup").GetProperty("interval_secs").GetInt32());
        var hints = Hints(policy);
        Assert.DoesNotContain(hints, h => h.Contains("redact", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(hints, h => h.Contains("In-memory", StringComparison.Ordinal));
        var retentionHint = Assert.Single(hints);
        Assert.Contains("31 days", retentionHint, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("off", "30", "redaction is off", false)]
    [InlineData("partial", "31", "redaction is partial", true)]
    [InlineData("strict", "3650", null, true)]
    [InlineData("strict", "30", null, false)]
    public async Task Policy_Hints_FollowModeAndSessionRetention(string mode, string days, string? redactionHint, bool retentionHint)
    {
        await using var stack = await StartAsync(StoreKind.InMemory, new() { ["APP_LOG_REDACTION_MODE"] = mode, ["APP_SESSION_RETENTION_DAYS"] = days });

        var policy = await PolicyAsync(stack);

        Assert.Equal(mode, policy.GetProperty("log_redaction_mode").GetString());
        var hints = Hints(policy);
        if (redactionHint is null)
        {
            Assert.DoesNotContain(hints, h => h.Contains("redact", StringComparison.OrdinalIgnoreCase));
        }
        else
        {
            Assert.Single(hints, h => h.Contains(redactionHint, StringComparison.OrdinalIgnoreCase));
        }
        Assert.Equal(retentionHint, hints.Any(h => h.Contains($"kept {days} days", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Policy_ZeroSessionRetention_SaysNextPass()
    {
        await using var stack = await StartAsync(StoreKind.InMemory, new() { ["APP_SESSION_RETENTION_DAYS"] = "0", ["APP_PRIVACY_CLEANUP_SECS"] = "120" });

        var policy = await PolicyAsync(stack);

        Assert.Equal(0, policy.GetProperty("retention").GetProperty("terminated_sessions_days").GetInt32());
        Assert.Contains(Hints(policy), h => h.Contains("next cleanup pass", StringComparison.Ordinal) && h.Contains("120 s", StringComparison.Ordinal));
    }
}
