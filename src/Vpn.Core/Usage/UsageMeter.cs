using System.Security.Cryptography;
using Vpn.Core.Reconciliation;

namespace Vpn.Core.Usage;

/// <summary>One peer's counters as reported to entry for a session: cumulative within <paramref name="Generation"/>.</summary>
public sealed record SessionUsage(Guid SessionId, long Generation, long RxBytes, long TxBytes);

/// <summary>
/// Turns the device's per-peer rx/tx counters, read by every reconciliation pass, into reports that count once however
/// often they are sent: a peer's bytes are cumulative within a generation, one counter run of the peer on the device.
/// wireguard-go's counters start again from zero when the peer is re-added or the device restarts: the peer is missing
/// from a read in between (a new run when it is back), or its counters went down; either way a new random generation
/// starts, which entry counts in full. A device key that passes to
/// another session without the peer being re-added keeps its run (the same generation, the same cumulative counters):
/// entry counts the new session's growth from where the key's run was. A core that restarted while wireguard-go kept
/// running continues the generation entry last recorded (handed back in the desired set) when the device's counters
/// are not below it, instead of counting the peer's bytes again.
/// Pending readings are kept per session and generation, oldest first, so an undelivered reading of a run that has
/// since ended is still sent (before the new run's) instead of being overwritten by it.
/// </summary>
public sealed class UsageMeter
{
    private readonly Lock _gate = new();
    private readonly Dictionary<WireGuardKey, Run> _runs = [];
    // Pending readings in the order they were first made pending; one per session and generation (the latest reading).
    private readonly SortedDictionary<long, SessionUsage> _pending = [];
    private readonly Dictionary<(Guid Session, long Generation), long> _pendingOrder = [];
    private readonly Dictionary<Guid, SessionUsage> _reported = [];
    private long _nextOrder;
    private bool _adoptionDone;

    private sealed class Run(Guid sessionId, long generation)
    {
        public Guid SessionId { get; set; } = sessionId;
        public long Generation { get; } = generation;
        public ulong LastRx { get; set; }
        public ulong LastTx { get; set; }
    }

    /// <summary>How many readings wait to be reported.</summary>
    public int PendingCount
    {
        get
        {
            lock (_gate)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>
    /// One read of the device: every peer's counters with the session its key belongs to (peers of no session are
    /// skipped). <paramref name="desired"/> is the pass's desired state (null when entry was unreachable): the first
    /// pass that has one lets a restarted core continue the generations it records.
    /// </summary>
    public void Observe(IReadOnlyList<(WireGuardKey Key, Guid SessionId, ulong Rx, ulong Tx)> peers, DesiredSnapshot? desired)
    {
        ArgumentNullException.ThrowIfNull(peers);
        lock (_gate)
        {
            var recorded = _adoptionDone ? null : desired?.Sessions.Where(s => s.Usage is not null).ToDictionary(s => s.SessionId, s => s.Usage!);
            var seen = new HashSet<WireGuardKey>();
            foreach (var (key, sessionId, rx, tx) in peers)
            {
                seen.Add(key);
                var run = _runs.GetValueOrDefault(key);
                if (run is null)
                {
                    run = recorded?.GetValueOrDefault(sessionId) is { } last && rx >= (ulong)last.RxBytes && tx >= (ulong)last.TxBytes
                        ? new Run(sessionId, last.Generation)
                        : new Run(sessionId, NewGeneration());
                }
                else if (rx < run.LastRx || tx < run.LastTx)
                {
                    run = new Run(sessionId, NewGeneration());
                }
                else
                {
                    run.SessionId = sessionId;
                }
                run.LastRx = rx;
                run.LastTx = tx;
                _runs[key] = run;
                var usage = new SessionUsage(sessionId, run.Generation, Clamp(rx), Clamp(tx));
                if (usage.RxBytes + (double)usage.TxBytes > 0 && _reported.GetValueOrDefault(sessionId) != usage)
                {
                    SetPendingLocked(usage);
                }
            }
            foreach (var gone in _runs.Keys.Where(k => !seen.Contains(k)).ToList())
            {
                _runs.Remove(gone);
            }
            // What was reported is kept only for the sessions this read saw (a session gone or whose key moved on has no
            // reading to compare with any more).
            var sessions = peers.Select(p => p.SessionId).ToHashSet();
            foreach (var ended in _reported.Keys.Where(id => !sessions.Contains(id)).ToList())
            {
                _reported.Remove(ended);
            }
            if (desired is not null)
            {
                _adoptionDone = true;
            }
        }
    }

    /// <summary>
    /// Takes up to <paramref name="max"/> pending readings, oldest first, at most one per session (a later generation of
    /// the same session waits for the next batch); give back what was not delivered with <see cref="Return"/>.
    /// </summary>
    public IReadOnlyList<SessionUsage> Take(int max)
    {
        lock (_gate)
        {
            var batch = new List<SessionUsage>(Math.Min(max, _pending.Count));
            var sessions = new HashSet<Guid>();
            var taken = new List<long>();
            foreach (var (order, usage) in _pending)
            {
                if (batch.Count == max)
                {
                    break;
                }
                if (sessions.Add(usage.SessionId))
                {
                    batch.Add(usage);
                    taken.Add(order);
                }
            }
            foreach (var order in taken)
            {
                _pendingOrder.Remove((_pending[order].SessionId, _pending[order].Generation));
                _pending.Remove(order);
            }
            return batch;
        }
    }

    /// <summary>The batch was recorded by entry.</summary>
    public void Delivered(IReadOnlyList<SessionUsage> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        lock (_gate)
        {
            foreach (var usage in batch)
            {
                _reported[usage.SessionId] = usage;
            }
        }
    }

    /// <summary>The batch was not delivered: pending again (ahead of later readings), unless a newer reading of the same run is pending.</summary>
    public void Return(IReadOnlyList<SessionUsage> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        lock (_gate)
        {
            foreach (var usage in batch.Reverse())
            {
                if (!_pendingOrder.ContainsKey((usage.SessionId, usage.Generation)))
                {
                    var order = (_pending.Count > 0 ? _pending.Keys.First() : _nextOrder) - 1;
                    _pending[order] = usage;
                    _pendingOrder[(usage.SessionId, usage.Generation)] = order;
                }
            }
        }
    }

    private void SetPendingLocked(SessionUsage usage)
    {
        if (_pendingOrder.TryGetValue((usage.SessionId, usage.Generation), out var order))
        {
            _pending[order] = usage;
            return;
        }
        order = _nextOrder++;
        _pending[order] = usage;
        _pendingOrder[(usage.SessionId, usage.Generation)] = order;
    }

    // wireguard-go's counters are 64-bit unsigned; entry's are signed (and saturate there too).
    private static long Clamp(ulong bytes) => bytes > long.MaxValue ? long.MaxValue : (long)bytes;

    private static long NewGeneration() => RandomNumberGenerator.GetInt32(1, int.MaxValue) * (long)int.MaxValue + RandomNumberGenerator.GetInt32(int.MaxValue);
}
