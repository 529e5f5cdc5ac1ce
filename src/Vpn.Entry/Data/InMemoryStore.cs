using Vpn.Domain.Sessions;
using Vpn.Entry.Devices;
using Vpn.Entry.Nodes;
using Vpn.Entry.Sessions;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Data;

/// <summary>
/// The zero-setup store for local runs: the same invariants as the PostgreSQL schema (one live session per
/// customer, unique device keys, unique live IPv4 and IPv6 addresses per node, one open subscription), enforced under one lock.
/// </summary>
public sealed class InMemoryStore : IPlanStore, IDeviceStore, INodeStore, ISessionStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Plan> _plans = new(StringComparer.Ordinal);
    private readonly List<Subscription> _subscriptions = [];
    private readonly Dictionary<Guid, Device> _devices = [];
    private readonly Dictionary<Guid, Node> _nodes = [];
    private readonly Dictionary<Guid, SessionRecord> _sessions = [];
    private long _lastClaimSeq;

    public Task<Plan> UpsertPlanAsync(Plan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        lock (_gate)
        {
            _plans[plan.Code] = plan;
            return Task.FromResult(plan);
        }
    }

    public Task<IReadOnlyList<Plan>> ListPlansAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<Plan>>([.. _plans.Values.OrderBy(p => p.Code, StringComparer.Ordinal)]);
        }
    }

    public Task<Subscription?> SetSubscriptionAsync(Guid customerId, string planCode, string status, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_plans.TryGetValue(planCode, out var plan))
            {
                return Task.FromResult<Subscription?>(null);
            }
            var open = _subscriptions.FindIndex(s => s.CustomerId == customerId && s.EndedAt is null);
            if (open >= 0)
            {
                _subscriptions[open] = _subscriptions[open] with { EndedAt = now };
            }
            var subscription = new Subscription(customerId, plan.Code, status, plan.MaxDevices, plan.AllowedRegions, now, null);
            _subscriptions.Add(subscription);
            return Task.FromResult<Subscription?>(subscription);
        }
    }

    public Task<Subscription?> GetSubscriptionAsync(Guid customerId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var latest = _subscriptions.LastOrDefault(s => s.CustomerId == customerId);
            // Limits come from the plan as it is now, as the SQL join does.
            if (latest is not null && _plans.TryGetValue(latest.PlanCode, out var plan))
            {
                latest = latest with { MaxDevices = plan.MaxDevices, AllowedRegions = plan.AllowedRegions };
            }
            return Task.FromResult(latest);
        }
    }

    public Task<DeviceCreateResult> CreateAsync(Device device, int maxDevices, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(device);
        lock (_gate)
        {
            if (_devices.Values.Any(d => d.PublicKey == device.PublicKey))
            {
                return Task.FromResult(new DeviceCreateResult(DeviceCreateOutcome.KeyInUse, null));
            }
            if (_devices.Values.Count(d => d.CustomerId == device.CustomerId) >= maxDevices)
            {
                return Task.FromResult(new DeviceCreateResult(DeviceCreateOutcome.LimitReached, null));
            }
            _devices[device.Id] = device;
            return Task.FromResult(new DeviceCreateResult(DeviceCreateOutcome.Created, device));
        }
    }

    public Task<IReadOnlyList<Device>> ListAsync(Guid customerId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<Device>>(
                [.. _devices.Values.Where(d => d.CustomerId == customerId).OrderBy(d => d.CreatedAt).ThenBy(d => d.Id)]);
        }
    }

    public Task<Device?> GetAsync(Guid customerId, Guid deviceId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_devices.TryGetValue(deviceId, out var d) && d.CustomerId == customerId ? d : null);
        }
    }

    /// <summary>Deletes terminated and failed sessions that ended before <paramref name="endedBefore"/>; returns how many.</summary>
    public int PurgeEndedSessions(DateTimeOffset endedBefore)
    {
        lock (_gate)
        {
            var ended = _sessions.Values.Where(s => !IsLive(s) && (s.EndedAt ?? s.CreatedAt) < endedBefore).Select(s => s.Id).ToList();
            ended.ForEach(id => _sessions.Remove(id));
            return ended.Count;
        }
    }

    public Task<(bool Deleted, SessionRecord? TerminatedSession)> DeleteAsync(Guid customerId, Guid deviceId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_devices.TryGetValue(deviceId, out var device) || device.CustomerId != customerId)
            {
                return Task.FromResult<(bool, SessionRecord?)>((false, null));
            }
            _devices.Remove(deviceId);
            SessionRecord? terminated = null;
            foreach (var session in _sessions.Values.Where(s => s.DeviceId == deviceId && IsLive(s)).ToList())
            {
                terminated = session;
                _sessions[session.Id] = session with { State = SessionState.Terminated, DeviceId = null, EndedAt = now };
            }
            return Task.FromResult((true, terminated));
        }
    }

    public Task<(Node Node, bool Created)> UpsertAsync(NodeRegistration registration, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        lock (_gate)
        {
            var existing = _nodes.Values.FirstOrDefault(n => n.Name == registration.Name);
            var node = new Node(existing?.Id ?? Guid.CreateVersion7(), registration.Name, registration.Region, registration.CountryCode,
                registration.CityCode, registration.Pool, registration.PublicEndpoint, registration.PublicKey, registration.CoreEndpoint,
                registration.Capacity, existing?.Healthy ?? false, existing?.ActivePeerCount ?? 0, existing?.LastHeartbeatAt, now);
            _nodes[node.Id] = node;
            return Task.FromResult((node, existing is null));
        }
    }

    /// <summary>Registers the development node under a fixed id (embedded mode only).</summary>
    public void SeedNode(Guid id, NodeRegistration r, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(r);
        lock (_gate)
        {
            _nodes[id] = new Node(id, r.Name, r.Region, r.CountryCode, r.CityCode, r.Pool, r.PublicEndpoint, r.PublicKey, r.CoreEndpoint,
                r.Capacity, false, 0, null, now);
        }
    }

    public Task<IReadOnlyList<Node>> ListAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<Node>>([.. _nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal)]);
        }
    }

    public Task<Node?> GetAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_nodes.GetValueOrDefault(nodeId));
        }
    }

    public Task<bool> IsNodePublicKeyAsync(string publicKey, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_nodes.Values.Any(n => n.PublicKey == publicKey));
        }
    }

    public Task<bool> RecordHeartbeatAsync(Guid nodeId, bool healthy, int activePeerCount, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_nodes.TryGetValue(nodeId, out var node))
            {
                return Task.FromResult(false);
            }
            _nodes[nodeId] = node with { Healthy = healthy, ActivePeerCount = activePeerCount, LastHeartbeatAt = now, UpdatedAt = now };
            return Task.FromResult(true);
        }
    }

    public Task<IReadOnlyList<DesiredPeer>> ListDesiredPeersAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<DesiredPeer>>([.. _sessions.Values.Where(s => s.NodeId == nodeId && IsLive(s)).OrderBy(s => s.Id)
                .Select(s => new DesiredPeer(s.Id, s.DevicePublicKey.ToBase64(), s.AssignedAddress, s.State.ToName(), s.AssignedAddressV6, s.ClaimSeq))]);
        }
    }

    public Task<IReadOnlyList<NodeWithLoad>> ListWithLoadAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var live = _sessions.Values.Where(IsLive).GroupBy(s => s.NodeId).ToDictionary(g => g.Key, g => g.Count());
            return Task.FromResult<IReadOnlyList<NodeWithLoad>>(
                [.. _nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal).Select(n => new NodeWithLoad(n, live.GetValueOrDefault(n.Id)))]);
        }
    }

    public Task<ClaimResult> ClaimAsync(NewSession session, bool replaceExisting, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        lock (_gate)
        {
            if (!_nodes.TryGetValue(session.NodeId, out var node))
            {
                return Task.FromResult(new ClaimResult(ClaimOutcome.NodeGone));
            }
            if (_sessions.Values.Count(s => s.NodeId == session.NodeId && IsLive(s)) >= node.Capacity)
            {
                return Task.FromResult(new ClaimResult(ClaimOutcome.NodeFull));
            }
            if (!_devices.ContainsKey(session.DeviceId))
            {
                return Task.FromResult(new ClaimResult(ClaimOutcome.DeviceGone));
            }
            var live = _sessions.Values.FirstOrDefault(s => s.CustomerId == session.CustomerId && IsLive(s));
            // Only an active session is replaced; a start still provisioning belongs to another request (as in PostgreSQL).
            if (live is not null && (!replaceExisting || live.State != SessionState.Active))
            {
                return Task.FromResult(new ClaimResult(ClaimOutcome.Conflict, live.Id));
            }
            if (live is not null)
            {
                _sessions[live.Id] = live with { State = SessionState.Terminated, EndedAt = session.CreatedAt };
            }
            _sessions[session.Id] = new SessionRecord(session.Id, session.CustomerId, session.DeviceId, session.DevicePublicKey, session.NodeId,
                SessionState.Provisioning, null, [], session.Region, session.CountryCode, session.CityCode, session.Pool, session.CreatedAt)
            {
                KeyHash = session.KeyHash,
                ClaimSeq = ++_lastClaimSeq,
            };
            return Task.FromResult(new ClaimResult(ClaimOutcome.Claimed, Replaced: live, ClaimSeq: _lastClaimSeq));
        }
    }

    public Task<SessionRecord?> FindActiveByKeyHashAsync(byte[] keyHash, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_sessions.Values.FirstOrDefault(s => s.State == SessionState.Active && s.KeyHash.AsSpan().SequenceEqual(keyHash)));
        }
    }

    public Task<bool> RotateKeyAsync(Guid sessionId, byte[] oldHash, byte[] newHash, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_sessions.TryGetValue(sessionId, out var s) || s.State != SessionState.Active || !s.KeyHash.AsSpan().SequenceEqual(oldHash))
            {
                return Task.FromResult(false);
            }
            _sessions[sessionId] = s with { KeyHash = newHash };
            return Task.FromResult(true);
        }
    }

    public Task<MoveOutcome> MoveAsync(Guid sessionId, byte[] oldHash, byte[] newHash, Guid nodeId, string address, string? addressV6,
        IReadOnlyList<string> dns, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_nodes.TryGetValue(nodeId, out var node) || _sessions.Values.Count(s => s.NodeId == nodeId && IsLive(s)) >= node.Capacity)
            {
                return Task.FromResult(MoveOutcome.NodeFull);
            }
            if (!_sessions.TryGetValue(sessionId, out var session) || session.State != SessionState.Active || !session.KeyHash.AsSpan().SequenceEqual(oldHash))
            {
                return Task.FromResult(MoveOutcome.KeyChanged);
            }
            if (AddressHeld(sessionId, nodeId, address, addressV6))
            {
                return Task.FromResult(MoveOutcome.AddressTaken);
            }
            _sessions[sessionId] = session with { KeyHash = newHash, NodeId = nodeId, AssignedAddress = address, AssignedAddressV6 = addressV6, Dns = dns };
            return Task.FromResult(MoveOutcome.Moved);
        }
    }

    public Task<bool> ActivateAsync(Guid sessionId, string assignedAddress, string? assignedAddressV6, IReadOnlyList<string> dns, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_sessions.TryGetValue(sessionId, out var session) || session.State != SessionState.Provisioning)
            {
                return Task.FromResult(false);
            }
            if (AddressHeld(sessionId, session.NodeId, assignedAddress, assignedAddressV6))
            {
                return Task.FromResult(false);
            }
            _sessions[sessionId] = session with { State = SessionState.Active, AssignedAddress = assignedAddress, AssignedAddressV6 = assignedAddressV6, Dns = dns };
            return Task.FromResult(true);
        }
    }

    public Task AbandonAsync(Guid sessionId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_sessions.TryGetValue(sessionId, out var session) && IsLive(session))
            {
                _sessions[sessionId] = session with { State = SessionState.Failed, EndedAt = now };
            }
            return Task.CompletedTask;
        }
    }

    public Task<IReadOnlyList<SessionRecord>> TerminateOutsidePlanRegionsAsync(string planCode, IReadOnlyList<string> allowedRegions,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var onPlan = _subscriptions.Where(s => s.EndedAt is null && s.PlanCode == planCode).Select(s => s.CustomerId).ToHashSet();
            var terminated = _sessions.Values
                .Where(s => IsLive(s) && onPlan.Contains(s.CustomerId) && !allowedRegions.Contains(s.Region, StringComparer.OrdinalIgnoreCase))
                .ToList();
            foreach (var session in terminated)
            {
                _sessions[session.Id] = session with { State = SessionState.Terminated, EndedAt = now };
            }
            return Task.FromResult<IReadOnlyList<SessionRecord>>(terminated);
        }
    }

    public Task<int> FailStaleProvisioningAsync(DateTimeOffset olderThan, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var stale = _sessions.Values.Where(s => s.State == SessionState.Provisioning && s.CreatedAt < olderThan).ToList();
            foreach (var session in stale)
            {
                _sessions[session.Id] = session with { State = SessionState.Failed, EndedAt = now };
            }
            return Task.FromResult(stale.Count);
        }
    }

    public Task<SessionRecord?> GetActiveAsync(Guid customerId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_sessions.Values.FirstOrDefault(s => s.CustomerId == customerId && s.State == SessionState.Active));
        }
    }

    public Task<Guid?> GetLiveIdAsync(Guid customerId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_sessions.Values.FirstOrDefault(s => s.CustomerId == customerId && IsLive(s))?.Id);
        }
    }

    public Task<SessionRecord?> TerminateActiveAsync(Guid customerId, string reason, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var session = _sessions.Values.FirstOrDefault(s => s.CustomerId == customerId && s.State == SessionState.Active);
            if (session is not null)
            {
                _sessions[session.Id] = session with { State = SessionState.Terminated, EndedAt = now };
            }
            return Task.FromResult(session);
        }
    }

    private static bool IsLive(SessionRecord s) => s.State is SessionState.Provisioning or SessionState.Active;

    /// <summary>
    /// Whether another live session on the node holds either address: the unique partial indexes sessions_node_address
    /// and sessions_node_address_v6 (a null IPv6 address conflicts with nothing). Call under the lock.
    /// </summary>
    private bool AddressHeld(Guid sessionId, Guid nodeId, string address, string? addressV6) =>
        _sessions.Values.Any(s => s.Id != sessionId && s.NodeId == nodeId && IsLive(s)
            && (s.AssignedAddress == address || (addressV6 is not null && s.AssignedAddressV6 == addressV6)));

    // ---- Reporting: read access for InMemorySubscriptionReportStore (Subscriptions/SubscriptionReporting.cs). ----

    /// <summary>Runs <paramref name="read"/> under the store's lock over all subscription periods (in the order they were opened) and the plans by code.</summary>
    internal T ReadSubscriptions<T>(Func<IReadOnlyList<Subscription>, IReadOnlyDictionary<string, Plan>, T> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        lock (_gate)
        {
            return read(_subscriptions, _plans);
        }
    }

    // ---- Erasure: Accounts/AccountErasure.cs. ----

    /// <summary>
    /// Deletes everything of one customer (subscription periods, devices, sessions of every state) in one step under
    /// the lock; returns whether anything existed, the sessions that were live (their peers are the caller's to remove)
    /// and the ids of every session and device deleted (audit events naming them go too).
    /// </summary>
    internal (bool Found, IReadOnlyList<SessionRecord> LiveSessions, IReadOnlyList<Guid> DeletedIds) EraseCustomer(Guid customerId)
    {
        lock (_gate)
        {
            var sessions = _sessions.Values.Where(s => s.CustomerId == customerId).ToList();
            var devices = _devices.Values.Where(d => d.CustomerId == customerId).Select(d => d.Id).ToList();
            var subscriptions = _subscriptions.RemoveAll(s => s.CustomerId == customerId);
            sessions.ForEach(s => _sessions.Remove(s.Id));
            devices.ForEach(id => _devices.Remove(id));
            return (sessions.Count + devices.Count + subscriptions > 0, [.. sessions.Where(IsLive)], [.. sessions.Select(s => s.Id), .. devices]);
        }
    }
}

/// <summary>In-memory Idempotency-Key records with the same semantics as the PostgreSQL table.</summary>
public sealed class InMemoryIdempotencyStore(TimeProvider time) : IIdempotencyStore
{
    /// <summary>Drops records expired before <paramref name="now"/>; returns how many.</summary>
    public int Purge(DateTimeOffset now)
    {
        lock (_gate)
        {
            var expired = _entries.Where(e => e.Value.ExpiresAt < now).Select(e => e.Key).ToList();
            expired.ForEach(k => _entries.Remove(k));
            return expired.Count;
        }
    }

    private static readonly TimeSpan Retention = TimeSpan.FromHours(24);
    private readonly Lock _gate = new();
    private readonly Dictionary<(Guid, string), Entry> _entries = [];

    public Task<IdempotencyResult> BeginAsync(Guid customerId, string key, byte[] requestHash, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue((customerId, key), out var entry) && entry.ExpiresAt >= now)
            {
                return Task.FromResult(!entry.Hash.AsSpan().SequenceEqual(requestHash) ? new IdempotencyResult(IdempotencyOutcome.Mismatch)
                    : entry.Body is null ? new IdempotencyResult(IdempotencyOutcome.InProgress)
                    : new IdempotencyResult(IdempotencyOutcome.Replay, entry.Status, entry.Body));
            }
            // Expired entries are dropped on touch; bounded by the customers' own traffic.
            foreach (var stale in _entries.Where(e => e.Value.ExpiresAt < time.GetUtcNow()).Select(e => e.Key).ToList())
            {
                _entries.Remove(stale);
            }
            _entries[(customerId, key)] = new Entry(requestHash, now + Retention, 0, null);
            return Task.FromResult(new IdempotencyResult(IdempotencyOutcome.Started));
        }
    }

    public Task CompleteAsync(Guid customerId, string key, int status, string body, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue((customerId, key), out var entry))
            {
                _entries[(customerId, key)] = entry with { Status = status, Body = body };
            }
            return Task.CompletedTask;
        }
    }

    public Task ReleaseAsync(Guid customerId, string key, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue((customerId, key), out var entry) && entry.Body is null)
            {
                _entries.Remove((customerId, key));
            }
            return Task.CompletedTask;
        }
    }

    /// <summary>Drops every record of one customer (erasure); returns whether there were any.</summary>
    internal bool EraseCustomer(Guid customerId)
    {
        lock (_gate)
        {
            var keys = _entries.Keys.Where(k => k.Item1 == customerId).ToList();
            keys.ForEach(k => _entries.Remove(k));
            return keys.Count > 0;
        }
    }

    private sealed record Entry(byte[] Hash, DateTimeOffset ExpiresAt, int Status, string? Body);
}
