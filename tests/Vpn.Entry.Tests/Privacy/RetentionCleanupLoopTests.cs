namespace Vpn.Entry.Tests.Privacy;

/// <summary>
/// The background cleanup loop of a running entry on a <see cref="FakeTimeProvider"/>: when passes run, and what a failed
/// pass leaves in the status and the privacy policy.
/// </summary>
public sealed class RetentionCleanupLoopTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Fails every pass while <see cref="Failing"/> is set; otherwise deletes nothing.</summary>
    private sealed class SwitchableStore : IRetentionStore
    {
        public volatile bool Failing;

        public Task<PurgeCounts?> PurgeAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset now, CancellationToken cancellationToken) =>
            Failing ? throw new InvalidOperationException("store down (test)") : Task.FromResult<PurgeCounts?>(new PurgeCounts(0, 0, 0));
    }

    private static Task<TestStack> StartAsync(FakeTimeProvider time, IRetentionStore? store = null) =>
        TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_PRIVACY_CLEANUP_SECS"] = "600" }, services =>
        {
            if (store is not null)
            {
                services.AddSingleton(store);
            }
            // The hosted service resolves this singleton: the loop runs on the fake clock, the rest of entry on the real one.
            services.AddSingleton(sp => ActivatorUtilities.CreateInstance<RetentionCleanupService>(sp, (TimeProvider)time));
        });

    /// <summary>Moves the fake clock on by <paramref name="step"/> until <paramref name="done"/> holds; returns how far it moved.</summary>
    private static async Task<TimeSpan> AdvanceUntilAsync(FakeTimeProvider time, TimeSpan step, TimeSpan limit, Func<bool> done)
    {
        var start = time.GetUtcNow();
        while (!done())
        {
            Assert.True(time.GetUtcNow() - start < limit, $"nothing happened within {limit} of fake time");
            time.Advance(step);
            // The loop continues on the thread pool after the timer fires.
            for (var i = 0; i < 40 && !done(); i++)
            {
                await Task.Delay(5, Ct);
            }
        }
        return time.GetUtcNow() - start;
    }

    [Fact]
    public async Task Loop_FirstPassAfterFiveSeconds_ThenEveryInterval()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var stack = await StartAsync(time);
        var status = stack.EntryServices.GetRequiredService<RetentionStatus>();

        var untilFirst = await AdvanceUntilAsync(time, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), () => status.Snapshot().LastSuccessAt is not null);
        var first = status.Snapshot().LastSuccessAt!.Value;
        var untilSecond = await AdvanceUntilAsync(time, TimeSpan.FromSeconds(30), TimeSpan.FromHours(1), () => status.Snapshot().LastSuccessAt != first);

        Assert.InRange(untilFirst, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10));
        Assert.InRange(status.Snapshot().LastSuccessAt!.Value - first, TimeSpan.FromSeconds(600), TimeSpan.FromSeconds(690));
        Assert.InRange(untilSecond, TimeSpan.FromSeconds(600), TimeSpan.FromSeconds(690));
    }

    [Fact]
    public async Task Loop_FailedPass_ShownInPolicy_RetriedWithinAMinute_ThenCleared()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = new SwitchableStore { Failing = true };
        await using var stack = await StartAsync(time, store);
        var status = stack.EntryServices.GetRequiredService<RetentionStatus>();

        await AdvanceUntilAsync(time, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), () => status.Snapshot().LastFailureAt is not null);
        var failedAt = status.Snapshot().LastFailureAt!.Value;
        var policy = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/privacy/policy"), 200);

        var cleanup = policy.GetProperty("cleanup");
        Assert.Equal("InvalidOperationException", cleanup.GetProperty("last_failure").GetString());
        Assert.Equal(failedAt, cleanup.GetProperty("last_failure_at").GetDateTimeOffset());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, cleanup.GetProperty("last_run_at").ValueKind);
        var hints = policy.GetProperty("compliance_hints").EnumerateArray().Select(h => h.GetString()!).ToList();
        Assert.Contains("The last retention cleanup pass failed (InvalidOperationException).", hints);
        // The exception's message never reaches the policy.
        Assert.DoesNotContain("store down", policy.GetRawText(), StringComparison.Ordinal);

        store.Failing = false;
        var untilRetry = await AdvanceUntilAsync(time, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), () => status.Snapshot().LastSuccessAt is not null);
        var recovered = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/privacy/policy"), 200);

        // Retried after a minute, not after the 10-minute interval.
        Assert.InRange(untilRetry, TimeSpan.FromSeconds(55), TimeSpan.FromSeconds(70));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, recovered.GetProperty("cleanup").GetProperty("last_failure").ValueKind);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, recovered.GetProperty("cleanup").GetProperty("last_failure_at").ValueKind);
        Assert.DoesNotContain(recovered.GetProperty("compliance_hints").EnumerateArray(), h => h.GetString()!.Contains("failed", StringComparison.Ordinal));
    }
}
