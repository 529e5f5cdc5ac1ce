using Vpn.Entry.Data.InMemory;
using Vpn.Entry.Data.Postgres;

namespace Vpn.Entry.Tests.Data;

/// <summary>
/// An Idempotency-Key record left pending by a start whose entry died, or lost the database mid-request (a switchover),
/// is taken over by a retry once older than the pending timeout; before that the retry is told the first still runs.
/// Both stores, the same contract. (Found by the storm benchmark's switchover run: three customers were stuck on
/// idempotency_key_in_progress after the primary was killed.)
/// </summary>
public abstract class IdempotencyTakeoverTests
{
    private static readonly TimeSpan AbandonAfter = TimeSpan.FromSeconds(30);
    private static readonly DateTimeOffset T0 = DateTimeOffset.UtcNow;
    private static readonly byte[] Hash = SHA256.HashData("the same request"u8);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected abstract Task<(IIdempotencyStore Store, IAsyncDisposable? Owner)> CreateAsync();

    [Fact]
    public async Task PendingRecord_YoungerThanTheTimeout_InProgress_OlderThanIt_TakenOverByTheRetry()
    {
        var (store, owner) = await CreateAsync();
        await using var _ = owner;
        var customer = Guid.NewGuid();
        Assert.Equal(IdempotencyOutcome.Started, (await store.BeginAsync(customer, "k1", Hash, T0, AbandonAfter, Ct)).Outcome);

        // The first start's entry never came back to record or release it.
        Assert.Equal(IdempotencyOutcome.InProgress, (await store.BeginAsync(customer, "k1", Hash, T0 + TimeSpan.FromSeconds(29), AbandonAfter, Ct)).Outcome);
        Assert.Equal(IdempotencyOutcome.Started, (await store.BeginAsync(customer, "k1", Hash, T0 + TimeSpan.FromSeconds(31), AbandonAfter, Ct)).Outcome);
        // The taker owns it now: a third attempt right after is in progress again, not a second takeover.
        Assert.Equal(IdempotencyOutcome.InProgress, (await store.BeginAsync(customer, "k1", Hash, T0 + TimeSpan.FromSeconds(32), AbandonAfter, Ct)).Outcome);
    }

    [Fact]
    public async Task CompletedRecord_IsNeverTakenOver_ItsAnswerReplaysForItsWholeRetention()
    {
        var (store, owner) = await CreateAsync();
        await using var _ = owner;
        var customer = Guid.NewGuid();
        Assert.Equal(IdempotencyOutcome.Started, (await store.BeginAsync(customer, "k2", Hash, T0, AbandonAfter, Ct)).Outcome);
        await store.CompleteAsync(customer, "k2", 201, "{\"answer\":1}", Ct);

        var later = await store.BeginAsync(customer, "k2", Hash, T0 + TimeSpan.FromHours(23), AbandonAfter, Ct);
        Assert.Equal(IdempotencyOutcome.Replay, later.Outcome);
        Assert.Equal((201, "{\"answer\":1}"), (later.Status, later.Body));
    }

    [Fact]
    public async Task AbandonedRecord_WithAnotherBody_StillMismatch_NotTakenOver()
    {
        var (store, owner) = await CreateAsync();
        await using var _ = owner;
        var customer = Guid.NewGuid();
        await store.BeginAsync(customer, "k3", Hash, T0, AbandonAfter, Ct);
        var other = SHA256.HashData("another request"u8);
        // Taken over only by the same request: a different body under the key is refused as before, abandoned or not.
        Assert.Equal(IdempotencyOutcome.Started, (await store.BeginAsync(customer, "k3", Hash, T0 + TimeSpan.FromMinutes(1), AbandonAfter, Ct)).Outcome);
        Assert.Equal(IdempotencyOutcome.Mismatch, (await store.BeginAsync(customer, "k3", other, T0 + TimeSpan.FromMinutes(1.1), AbandonAfter, Ct)).Outcome);
    }
}

public sealed class InMemoryIdempotencyTakeoverTests : IdempotencyTakeoverTests
{
    protected override Task<(IIdempotencyStore Store, IAsyncDisposable? Owner)> CreateAsync() =>
        Task.FromResult<(IIdempotencyStore, IAsyncDisposable?)>((new InMemoryIdempotencyStore(TimeProvider.System), null));
}

public sealed class PostgresIdempotencyTakeoverTests : IdempotencyTakeoverTests
{
    protected override async Task<(IIdempotencyStore Store, IAsyncDisposable? Owner)> CreateAsync()
    {
        var db = await TestDatabase.CreateMigratedAsync("idem_takeover");
        return (new PostgresIdempotencyStore(db.DataSource), db);
    }
}
