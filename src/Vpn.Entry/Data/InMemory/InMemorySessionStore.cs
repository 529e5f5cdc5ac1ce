using Vpn.Domain.Sessions;
using Vpn.Domain.Subscriptions;

namespace Vpn.Entry.Data.InMemory;

public sealed class InMemorySessionStore(InMemoryDatabase db, InMemoryUsageStore usage) : ISessionStore
{
    public Task<ClaimResult> ClaimAsync(NewSession session, bool replaceExisting, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        lock (db.Gate)
        {
            return Task.FromResult(ClaimLocked(session, replaceExisting));
        }
    }

    // The same checks in the same order as claim_session_start (migrations 0007 and 0008), under the one lock.
    public Task<StartClaimResult> ClaimStartAsync(StartClaim claim, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claim);
        lock (db.Gate)
        {
            var entitlement = db.CurrentSubscription(claim.CustomerId)?.ToEntitlement();
            if (!Entitlements.Check(entitlement, claim.Region).Allowed)
            {
                return Task.FromResult(new StartClaimResult(new ClaimResult(ClaimOutcome.NotEntitled), Entitlement: entitlement));
            }
            if (usage.UsageLocked(claim.CustomerId, claim.CreatedAt) is { Exhausted: true } used)
            {
                return Task.FromResult(new StartClaimResult(new ClaimResult(ClaimOutcome.QuotaExceeded), QuotaResetsAt: used.Period.End));
            }
            if (!db.Devices.TryGetValue(claim.DeviceId, out var device) || device.CustomerId != claim.CustomerId)
            {
                return Task.FromResult(new StartClaimResult(new ClaimResult(ClaimOutcome.DeviceGone)));
            }
            if (!db.Nodes.TryGetValue(claim.NodeId, out var node))
            {
                return Task.FromResult(new StartClaimResult(new ClaimResult(ClaimOutcome.NodeGone)));
            }
            var live = db.Sessions.Values.Count(s => s.NodeId == claim.NodeId && InMemoryDatabase.IsLive(s));
            if (node.Draining || !node.Healthy || node.LastHeartbeatAt is not { } beat || beat < claim.FreshAfter)
            {
                return Task.FromResult(new StartClaimResult(new ClaimResult(ClaimOutcome.NodeUnfit), NodeLive: live));
            }
            var session = new NewSession(claim.Id, claim.CustomerId, claim.DeviceId, device.PublicKey, claim.NodeId, claim.KeyHash, claim.Region,
                claim.CountryCode, claim.CityCode, claim.Pool, claim.CreatedAt);
            var result = ClaimLocked(session, claim.ReplaceExisting);
            return Task.FromResult(new StartClaimResult(result, device.PublicKey,
                NodeLive: result.Outcome == ClaimOutcome.Claimed && result.Replaced?.NodeId != claim.NodeId ? live + 1 : live));
        }
    }

    private ClaimResult ClaimLocked(NewSession session, bool replaceExisting)
    {
        if (!db.Nodes.TryGetValue(session.NodeId, out var node))
        {
            return new ClaimResult(ClaimOutcome.NodeGone);
        }
        if (db.Sessions.Values.Count(s => s.NodeId == session.NodeId && InMemoryDatabase.IsLive(s)) >= node.Capacity)
        {
            return new ClaimResult(ClaimOutcome.NodeFull);
        }
        if (!db.Devices.ContainsKey(session.DeviceId))
        {
            return new ClaimResult(ClaimOutcome.DeviceGone);
        }
        var live = db.Sessions.Values.FirstOrDefault(s => s.CustomerId == session.CustomerId && InMemoryDatabase.IsLive(s));
        // Only an active session is replaced; a start still provisioning belongs to another request (as in PostgreSQL).
        if (live is not null && (!replaceExisting || live.State != SessionState.Active))
        {
            return new ClaimResult(ClaimOutcome.Conflict, live.Id);
        }
        if (live is not null)
        {
            db.Sessions[live.Id] = live with { State = SessionState.Terminated, EndedAt = session.CreatedAt, TerminateReason = "replaced" };
        }
        var claimSeq = db.NextClaimSeq();
        db.Sessions[session.Id] = new SessionRecord(session.Id, session.CustomerId, session.DeviceId, session.DevicePublicKey, session.NodeId,
            SessionState.Provisioning, null, [], session.Region, session.CountryCode, session.CityCode, session.Pool, session.CreatedAt)
        {
            KeyHash = session.KeyHash,
            ClaimSeq = claimSeq,
        };
        return new ClaimResult(ClaimOutcome.Claimed, Replaced: live, ClaimSeq: claimSeq);
    }

    public Task<SessionRecord?> FindActiveByKeyHashAsync(byte[] keyHash, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult(db.Sessions.Values.FirstOrDefault(s => s.State == SessionState.Active && s.KeyHash.AsSpan().SequenceEqual(keyHash)));
        }
    }

    public Task<bool> RotateKeyAsync(Guid sessionId, byte[] oldHash, byte[] newHash, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (!db.Sessions.TryGetValue(sessionId, out var s) || s.State != SessionState.Active || !s.KeyHash.AsSpan().SequenceEqual(oldHash))
            {
                return Task.FromResult(false);
            }
            db.Sessions[sessionId] = s with { KeyHash = newHash };
            return Task.FromResult(true);
        }
    }

    public Task<MoveOutcome> MoveAsync(Guid sessionId, byte[] oldHash, byte[] newHash, Guid nodeId, string address, string? addressV6,
        IReadOnlyList<string> dns, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (!db.Nodes.TryGetValue(nodeId, out var node) || db.Sessions.Values.Count(s => s.NodeId == nodeId && InMemoryDatabase.IsLive(s)) >= node.Capacity)
            {
                return Task.FromResult(MoveOutcome.NodeFull);
            }
            if (!db.Sessions.TryGetValue(sessionId, out var session) || session.State != SessionState.Active || !session.KeyHash.AsSpan().SequenceEqual(oldHash))
            {
                return Task.FromResult(MoveOutcome.KeyChanged);
            }
            if (db.AddressHeld(sessionId, nodeId, address, addressV6))
            {
                return Task.FromResult(MoveOutcome.AddressTaken);
            }
            db.Sessions[sessionId] = session with { KeyHash = newHash, NodeId = nodeId, AssignedAddress = address, AssignedAddressV6 = addressV6, Dns = dns };
            return Task.FromResult(MoveOutcome.Moved);
        }
    }

    public Task<bool> ActivateAsync(Guid sessionId, string assignedAddress, string? assignedAddressV6, IReadOnlyList<string> dns, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (!db.Sessions.TryGetValue(sessionId, out var session) || session.State != SessionState.Provisioning)
            {
                return Task.FromResult(false);
            }
            if (db.AddressHeld(sessionId, session.NodeId, assignedAddress, assignedAddressV6))
            {
                return Task.FromResult(false);
            }
            db.Sessions[sessionId] = session with { State = SessionState.Active, AssignedAddress = assignedAddress, AssignedAddressV6 = assignedAddressV6, Dns = dns };
            return Task.FromResult(true);
        }
    }

    public Task AbandonAsync(Guid sessionId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (db.Sessions.TryGetValue(sessionId, out var session) && InMemoryDatabase.IsLive(session))
            {
                db.Sessions[sessionId] = session with { State = SessionState.Failed, EndedAt = now, TerminateReason = "provisioning_failed" };
            }
            return Task.CompletedTask;
        }
    }

    public Task<IReadOnlyList<SessionRecord>> TerminateOutsidePlanRegionsAsync(string planCode, IReadOnlyList<string> allowedRegions,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            var onPlan = db.Subscriptions.Where(s => s.EndedAt is null && s.PlanCode == planCode).Select(s => s.CustomerId).ToHashSet();
            var terminated = db.Sessions.Values
                .Where(s => InMemoryDatabase.IsLive(s) && onPlan.Contains(s.CustomerId) && !allowedRegions.Contains(s.Region, StringComparer.OrdinalIgnoreCase))
                .ToList();
            foreach (var session in terminated)
            {
                db.Sessions[session.Id] = session with { State = SessionState.Terminated, EndedAt = now, TerminateReason = "entitlement_changed" };
            }
            return Task.FromResult<IReadOnlyList<SessionRecord>>(terminated);
        }
    }

    public Task<int> FailStaleProvisioningAsync(DateTimeOffset olderThan, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            var stale = db.Sessions.Values.Where(s => s.State == SessionState.Provisioning && s.CreatedAt < olderThan).ToList();
            foreach (var session in stale)
            {
                db.Sessions[session.Id] = session with { State = SessionState.Failed, EndedAt = now, TerminateReason = "provisioning_abandoned" };
            }
            return Task.FromResult(stale.Count);
        }
    }

    public Task<SessionRecord?> GetActiveAsync(Guid customerId, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult(db.Sessions.Values.FirstOrDefault(s => s.CustomerId == customerId && s.State == SessionState.Active));
        }
    }

    public Task<Guid?> GetLiveIdAsync(Guid customerId, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult(db.Sessions.Values.FirstOrDefault(s => s.CustomerId == customerId && InMemoryDatabase.IsLive(s))?.Id);
        }
    }

    public Task<SessionRecord?> TerminateActiveAsync(Guid customerId, string reason, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            var session = db.Sessions.Values.FirstOrDefault(s => s.CustomerId == customerId && s.State == SessionState.Active);
            if (session is not null)
            {
                db.Sessions[session.Id] = session with { State = SessionState.Terminated, EndedAt = now, TerminateReason = reason };
            }
            return Task.FromResult(session);
        }
    }
}
