using Vpn.Entry.Accounts;

namespace Vpn.Entry.Data.InMemory;

/// <summary>The same erasure over the in-memory stores (one process: the revocation is the caller's <see cref="ITokenRevocations.Remember"/>).</summary>
public sealed class InMemoryCustomerErasureStore(InMemoryDatabase db, InMemoryIdentityStore identities, InMemoryIdempotencyStore idempotency,
    InMemoryAuditLog audit) : ICustomerErasureStore
{
    public Task<ErasureResult> EraseAsync(Guid customerId, CustomerRevocation revocation, bool revokeIfUnknown, CancellationToken cancellationToken)
    {
        var (found, live, deletedIds) = EraseFromDatabase(customerId);
        found |= identities.EraseCustomer(customerId);
        found |= idempotency.EraseCustomer(customerId);
        var named = new HashSet<string>(deletedIds.Select(id => id.ToString()), StringComparer.Ordinal) { customerId.ToString() };
        found |= audit.EraseNaming(named) > 0;
        return Task.FromResult(new ErasureResult(found, [.. live.Select(s => new ErasedSession(s.Id, s.NodeId))]));
    }

    /// <summary>
    /// Deletes everything of one customer (subscription periods, devices, sessions of every state) in one step under
    /// the lock; returns whether anything existed, the sessions that were live (their peers are the caller's to remove)
    /// and the ids of every session and device deleted (audit events naming them go too).
    /// </summary>
    private (bool Found, IReadOnlyList<SessionRecord> LiveSessions, IReadOnlyList<Guid> DeletedIds) EraseFromDatabase(Guid customerId)
    {
        lock (db.Gate)
        {
            var sessions = db.Sessions.Values.Where(s => s.CustomerId == customerId).ToList();
            var devices = db.Devices.Values.Where(d => d.CustomerId == customerId).Select(d => d.Id).ToList();
            var subscriptions = db.Subscriptions.RemoveAll(s => s.CustomerId == customerId);
            sessions.ForEach(s => db.Sessions.Remove(s.Id));
            sessions.ForEach(s => db.SessionUsage.Remove(s.Id));
            foreach (var key in db.Usage.Keys.Where(k => k.CustomerId == customerId).ToList())
            {
                db.Usage.Remove(key);
            }
            devices.ForEach(id => db.Devices.Remove(id));
            return (sessions.Count + devices.Count + subscriptions > 0, [.. sessions.Where(InMemoryDatabase.IsLive)], [.. sessions.Select(s => s.Id), .. devices]);
        }
    }
}
