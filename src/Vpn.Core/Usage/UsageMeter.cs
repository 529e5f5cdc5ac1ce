using System.Security.Cryptography;
using Vpn.Core.Reconciliation;

namespace Vpn.Core.Usage;

/// <summary>One session's counters as reported to entry: cumulative within <paramref name="Generation"/>.</summary>
public sealed record SessionUsage(Guid SessionId, long Generation, long RxBytes, long TxBytes);

/// <summary>
/// Turns the device's per-peer rx/tx counters, read by every reconciliation pass, into per-session reports that count
/// once however often they are sent: each session's bytes are cumulative within a generation, one counter run of its
/// peer. wireguard-go's counters start again from zero when the peer is re-added (reconciliation, an idle endpoint
/// wipe) or the device restarts; then, or when the counters went down, a new random generation starts, which entry counts
/// in full. A device key that passes to another session without a reset carries its old bytes: the new session counts
/// from where the key was. A core that restarted (wireguard-go did not) continues the generation entry last recorded
/// when the device's counters are not below it, instead of counting the peer's bytes again.
/// Only what changed since the last successful report is pending.
/// </summary>
public sealed class UsageMeter
{
    private readonly Lock _gate = new();
    private readonly Dictionary<WireGuardKey, Run> _runs = [];
    private readonly Dictionary<Guid, SessionUsage> _pending = [];
    private readonly Dictionary<Guid, SessionUsage> _reported = [];
    private bool _observedOnce;

    private sealed class Run(Guid sessionId, long generation, ulong baseRx, ulong baseTx)
    {
        public Guid SessionId { get; } = sessionId;
        public long Generation { get; } = generation;
        public ulong BaseRx { get; } = baseRx;
        public ulong BaseTx { get; } = baseTx;
        public ulong LastRx { get; set; }
        public ulong LastTx { get; set; }
        public bool Restarted { get; set; }
    }

    /// <summary>How many sessions have counters waiting to be reported.</summary>
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
    /// skipped). <paramref name="desired"/> is the pass's desired state, whose recorded counters a restarted core continues.
    /// </summary>
    public void Observe(IReadOnlyList<(WireGuardKey Key, Guid SessionId, ulong Rx, ulong Tx)> peers, DesiredSnapshot? desired)
    {
        ArgumentNullException.ThrowIfNull(peers);
        var recorded = desired?.Sessions.Where(s => s.Usage is not null).ToDictionary(s => s.SessionId, s => s.Usage!);
        lock (_gate)
        {
            var seen = new HashSet<WireGuardKey>();
            foreach (var (key, sessionId, rx, tx) in peers)
            {
                seen.Add(key);
                var run = _runs.GetValueOrDefault(key);
                if (run is null)
                {
                    run = !_observedOnce && recorded?.GetValueOrDefault(sessionId) is { } last && rx >= (ulong)last.RxBytes && tx >= (ulong)last.TxBytes
                        ? new Run(sessionId, last.Generation, 0, 0)
                        : new Run(sessionId, NewGeneration(), 0, 0);
                }
                else if (run.Restarted || rx < run.LastRx || tx < run.LastTx)
                {
                    run = new Run(sessionId, NewGeneration(), 0, 0);
                }
                else if (run.SessionId != sessionId)
                {
                    run = new Run(sessionId, NewGeneration(), run.LastRx, run.LastTx);
                }
                run.LastRx = rx;
                run.LastTx = tx;
                _runs[key] = run;
                var usage = new SessionUsage(sessionId, run.Generation, checked((long)(rx - run.BaseRx)), checked((long)(tx - run.BaseTx)));
                if (usage.RxBytes + usage.TxBytes > 0 && _reported.GetValueOrDefault(sessionId) != usage)
                {
                    _pending[sessionId] = usage;
                }
            }
            foreach (var gone in _runs.Keys.Where(k => !seen.Contains(k)).ToList())
            {
                _reported.Remove(_runs[gone].SessionId);
                _runs.Remove(gone);
            }
            _observedOnce = true;
        }
    }

    /// <summary>These peers were (re-)added to the device after the last read: their counters start again from zero.</summary>
    public void MarkRestarted(IEnumerable<WireGuardKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        lock (_gate)
        {
            foreach (var key in keys)
            {
                if (_runs.TryGetValue(key, out var run))
                {
                    run.Restarted = true;
                }
            }
        }
    }

    /// <summary>The device was recreated: every peer's counters start again from zero.</summary>
    public void MarkAllRestarted()
    {
        lock (_gate)
        {
            foreach (var run in _runs.Values)
            {
                run.Restarted = true;
            }
        }
    }

    /// <summary>Takes up to <paramref name="max"/> pending reports; give back what was not delivered with <see cref="Return"/>.</summary>
    public IReadOnlyList<SessionUsage> Take(int max)
    {
        lock (_gate)
        {
            var batch = _pending.Values.Take(max).ToList();
            batch.ForEach(u => _pending.Remove(u.SessionId));
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

    /// <summary>The batch was not delivered: pending again, unless a newer reading of the session is already pending.</summary>
    public void Return(IReadOnlyList<SessionUsage> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        lock (_gate)
        {
            foreach (var usage in batch)
            {
                _pending.TryAdd(usage.SessionId, usage);
            }
        }
    }

    private static long NewGeneration() => RandomNumberGenerator.GetInt32(1, int.MaxValue) * (long)int.MaxValue + RandomNumberGenerator.GetInt32(int.MaxValue);
}
