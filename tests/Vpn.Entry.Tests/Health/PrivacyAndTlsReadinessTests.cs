using Vpn.Entry.Audit;
using Vpn.Entry.Data.InMemory;
using Vpn.Entry.Health;

namespace Vpn.Entry.Tests.Health;

/// <summary>The readiness checks added by the privacy and core-TLS settings: privacy and core_tls.</summary>
public class PrivacyAndTlsReadinessTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static EntryOptions Options(params (string Key, string Value)[] settings) => OptionsLoading.Load(EntryOptions.Load, settings).Options;

    private static async Task RegisterAsync(InMemoryNodeStore store, string name, string coreEndpoint) =>
        await store.UpsertAsync(new NodeRegistration(name, "eu", null, null, null, "203.0.113.1:51820",
            Convert.ToBase64String(new byte[32].Select((_, i) => (byte)(i + 1)).ToArray()), coreEndpoint, 10), DateTimeOffset.UtcNow, Token);

    [Fact]
    public async Task Privacy_NoPassYet_OkAndSaysPending()
    {
        var check = new PrivacyReadinessCheck(Options(), new RetentionStatus(), new FakeTimeProvider(DateTimeOffset.UtcNow));

        var result = await check.RunAsync(Token);

        Assert.True(result.Ok);
        Assert.Contains("pending", result.Detail, StringComparison.Ordinal);
        Assert.Contains("partial", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Privacy_LastPassFailed_NotOkWithReason()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var status = new RetentionStatus();
        var cleanup = new RetentionCleanupService(new FailingRetentionStore(), Options().Privacy, status, new InMemoryAuditLog(),
            Metrics(), time, Microsoft.Extensions.Logging.Abstractions.NullLogger<RetentionCleanupService>.Instance);
        await cleanup.StartAsync(Token);
        // ExecuteAsync starts on another thread: keep the fake clock moving until its first pass has run.
        await WaitUntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(6));
            return status.Snapshot().LastFailure is not null;
        });
        await cleanup.StopAsync(Token);

        var result = await new PrivacyReadinessCheck(Options(), status, time).RunAsync(Token);

        Assert.False(result.Ok);
        Assert.Contains(nameof(TimeoutException), result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Privacy_NoPassForThreeIntervals_NotOk()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var status = new RetentionStatus();
        var options = Options(("APP_PRIVACY_CLEANUP_SECS", "60"));
        var cleanup = new RetentionCleanupService(InMemoryRetention(time),
            options.Privacy, status, new InMemoryAuditLog(), Metrics(), time,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<RetentionCleanupService>.Instance);
        await cleanup.RunOnceAsync(Token);
        Assert.True((await new PrivacyReadinessCheck(options, status, time).RunAsync(Token)).Ok);

        time.Advance(TimeSpan.FromSeconds(181));

        Assert.False((await new PrivacyReadinessCheck(options, status, time).RunAsync(Token)).Ok);
    }

    [Fact]
    public async Task Privacy_ProductionWithoutStrictRedaction_NotOk()
    {
        var options = new EntryOptions
        {
            Environment = "production",
            AccessTokens = Options().AccessTokens,
            Oidc = Options().Oidc,
            RateLimits = Options().RateLimits,
            Privacy = new PrivacyOptions { LogRedaction = LogRedactionMode.Partial },
        };

        var result = await new PrivacyReadinessCheck(options, new RetentionStatus(), TimeProvider.System).RunAsync(Token);

        Assert.False(result.Ok);
        Assert.Contains("strict", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CoreTls_NotRequired_Ok()
    {
        var store = new InMemoryStores().Nodes;
        await RegisterAsync(store, "plain", "http://127.0.0.1:50051");

        Assert.True((await new CoreTlsReadinessCheck(store, Options()).RunAsync(Token)).Ok);
    }

    [Fact]
    public async Task CoreTls_RequiredAndACleartextNode_NotOkNamingIt()
    {
        var store = new InMemoryStores().Nodes;
        await RegisterAsync(store, "tls-node", "https://core.example:50051");
        await RegisterAsync(store, "local-node", "unix:/run/core.sock");
        var options = Options(("APP_REQUIRE_CORE_TLS", "true"));
        Assert.True((await new CoreTlsReadinessCheck(store, options).RunAsync(Token)).Ok);

        await RegisterAsync(store, "plain-node", "127.0.0.1:50051");
        var result = await new CoreTlsReadinessCheck(store, options).RunAsync(Token);

        Assert.False(result.Ok);
        Assert.Contains("plain-node", result.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("tls-node", result.Detail, StringComparison.Ordinal);
    }

    // The runtime's own meter factory, as the host has it.
    private static EntryMetrics Metrics() =>
        new(new ServiceCollection().AddMetrics().BuildServiceProvider()
            .GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached within 10 s");
            await Task.Delay(20, Token);
        }
    }

    private sealed class FailingRetentionStore : IRetentionStore
    {
        public Task<PurgeCounts?> PurgeAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset now, CancellationToken cancellationToken) =>
            Task.FromException<PurgeCounts?>(new TimeoutException());
    }

    private static InMemoryRetentionStore InMemoryRetention(TimeProvider time)
    {
        var db = new InMemoryDatabase();
        return new InMemoryRetentionStore(db, new InMemoryAuditLog(), new InMemoryIdempotencyStore(time), new InMemoryUsageStore(db));
    }
}
