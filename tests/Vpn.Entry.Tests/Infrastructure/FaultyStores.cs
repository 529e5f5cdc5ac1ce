using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Vpn.Entry.Tests.Infrastructure;

/// <summary>
/// Wraps entry's real stores (pass <see cref="Install"/> as <see cref="TestStack"/>'s configureServices): every call goes
/// through to the store the stack runs on, except the ones a test arms to fail once, which throw what a connection lost
/// mid-request throws (entry answers 503 store_unavailable) — after the real store did nothing.
/// </summary>
public sealed class FaultyStores
{
    private int _failActivate;
    private int _failMove;
    private int _failCompleteCreated;

    /// <summary>The next ActivateAsync throws (a store failure after core added the peer).</summary>
    public void FailNextActivation() => Volatile.Write(ref _failActivate, 1);

    /// <summary>The next MoveAsync throws (a store failure after the new node's core added the peer).</summary>
    public void FailNextMove() => Volatile.Write(ref _failMove, 1);

    /// <summary>The next Idempotency-Key completion with a 201 throws (after the session was activated).</summary>
    public void FailNextCreatedRecord() => Volatile.Write(ref _failCompleteCreated, 1);

    public void Install(IServiceCollection services)
    {
        Decorate<ISessionStore>(services, inner => new Sessions(inner, this));
        Decorate<IIdempotencyStore>(services, inner => new Idempotency(inner, this));
    }

    /// <summary>What a PostgreSQL connection reset mid-statement throws (ProblemHandling maps it to 503).</summary>
    public static NpgsqlException StoreFailure() =>
        new("Exception while reading from stream (injected by the test)", new SocketException((int)SocketError.ConnectionReset));

    private static bool Take(ref int flag) => Interlocked.Exchange(ref flag, 0) == 1;

    private static void Decorate<T>(IServiceCollection services, Func<T, T> wrap)
        where T : class
    {
        var inner = services.Last(d => d.ServiceType == typeof(T));
        services.RemoveAll<T>();
        services.AddSingleton(sp => wrap((T)(inner.ImplementationInstance
            ?? inner.ImplementationFactory?.Invoke(sp)
            ?? ActivatorUtilities.CreateInstance(sp, inner.ImplementationType!))));
    }

    private sealed class Sessions(ISessionStore inner, FaultyStores faults) : ISessionStore
    {
        public Task<bool> ActivateAsync(Guid sessionId, string assignedAddress, string? assignedAddressV6, IReadOnlyList<string> dns, DateTimeOffset now,
            CancellationToken cancellationToken) =>
            Take(ref faults._failActivate) ? throw StoreFailure() : inner.ActivateAsync(sessionId, assignedAddress, assignedAddressV6, dns, now, cancellationToken);

        public Task<MoveOutcome> MoveAsync(Guid sessionId, byte[] oldHash, byte[] newHash, Guid nodeId, string address, string? addressV6,
            IReadOnlyList<string> dns, DateTimeOffset now, CancellationToken cancellationToken) =>
            Take(ref faults._failMove) ? throw StoreFailure() : inner.MoveAsync(sessionId, oldHash, newHash, nodeId, address, addressV6, dns, now, cancellationToken);

        public Task<ClaimResult> ClaimAsync(NewSession session, bool replaceExisting, CancellationToken cancellationToken) =>
            inner.ClaimAsync(session, replaceExisting, cancellationToken);

        public Task<StartClaimResult> ClaimStartAsync(StartClaim claim, CancellationToken cancellationToken) => inner.ClaimStartAsync(claim, cancellationToken);

        public Task<SessionRecord?> FindActiveByKeyHashAsync(byte[] keyHash, CancellationToken cancellationToken) =>
            inner.FindActiveByKeyHashAsync(keyHash, cancellationToken);

        public Task<bool> RotateKeyAsync(Guid sessionId, byte[] oldHash, byte[] newHash, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.RotateKeyAsync(sessionId, oldHash, newHash, now, cancellationToken);

        public Task AbandonAsync(Guid sessionId, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.AbandonAsync(sessionId, now, cancellationToken);

        public Task<int> FailStaleProvisioningAsync(DateTimeOffset olderThan, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.FailStaleProvisioningAsync(olderThan, now, cancellationToken);

        public Task<IReadOnlyList<SessionRecord>> TerminateOutsidePlanRegionsAsync(string planCode, IReadOnlyList<string> allowedRegions,
            DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.TerminateOutsidePlanRegionsAsync(planCode, allowedRegions, now, cancellationToken);

        public Task<SessionRecord?> GetActiveAsync(Guid customerId, CancellationToken cancellationToken) => inner.GetActiveAsync(customerId, cancellationToken);

        public Task<Guid?> GetLiveIdAsync(Guid customerId, CancellationToken cancellationToken) => inner.GetLiveIdAsync(customerId, cancellationToken);

        public Task<SessionRecord?> TerminateActiveAsync(Guid customerId, string reason, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.TerminateActiveAsync(customerId, reason, now, cancellationToken);
    }

    private sealed class Idempotency(IIdempotencyStore inner, FaultyStores faults) : IIdempotencyStore
    {
        public Task<IdempotencyResult> BeginAsync(Guid customerId, string key, byte[] requestHash, DateTimeOffset now, TimeSpan abandonAfter,
            CancellationToken cancellationToken) =>
            inner.BeginAsync(customerId, key, requestHash, now, abandonAfter, cancellationToken);

        public Task CompleteAsync(Guid customerId, string key, int status, string body, CancellationToken cancellationToken) =>
            status == StatusCodes.Created && Take(ref faults._failCompleteCreated)
                ? throw StoreFailure()
                : inner.CompleteAsync(customerId, key, status, body, cancellationToken);

        public Task ReleaseAsync(Guid customerId, string key, CancellationToken cancellationToken) => inner.ReleaseAsync(customerId, key, cancellationToken);
    }

    private static class StatusCodes
    {
        public const int Created = 201;
    }
}
