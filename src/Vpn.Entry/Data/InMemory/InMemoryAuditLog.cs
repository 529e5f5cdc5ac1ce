using System.Collections.Concurrent;
using Vpn.Entry.Audit;

namespace Vpn.Entry.Data.InMemory;

public sealed class InMemoryAuditLog : IAuditLog
{
    private readonly ConcurrentQueue<AuditEvent> _events = new();
    private readonly Lock _purge = new();

    /// <summary>Drops events before <paramref name="before"/> (the queue is in write order); returns how many.</summary>
    public int Purge(DateTimeOffset before)
    {
        lock (_purge)
        {
            var removed = 0;
            while (_events.TryPeek(out var oldest) && oldest.OccurredAt < before && _events.TryDequeue(out _))
            {
                removed++;
            }
            return removed;
        }
    }

    public async IAsyncEnumerable<AuditEvent> ExportAsync(AuditQuery query, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        await Task.CompletedTask;
        foreach (var auditEvent in _events.ToArray().Where(query.Matches).OrderBy(e => e.OccurredAt))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return auditEvent;
        }
    }

    /// <summary>How many events happened before <paramref name="before"/> (the privacy conformance check).</summary>
    public int CountBefore(DateTimeOffset before) => _events.Count(e => e.OccurredAt < before);

    public Task WriteAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        // Under the purge lock so an erasure's rebuild (below) never drops an event written meanwhile.
        lock (_purge)
        {
            _events.Enqueue(auditEvent);
        }
        return Task.CompletedTask;
    }

    /// <summary>Drops every event that names any of <paramref name="ids"/> as actor, subject or a detail's value (erasure); returns how many.</summary>
    public int EraseNaming(IReadOnlyCollection<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        lock (_purge)
        {
            var kept = new List<AuditEvent>();
            var removed = 0;
            while (_events.TryDequeue(out var e))
            {
                if (ids.Contains(e.Actor) || (e.Subject is { } subject && ids.Contains(subject)) || e.Details.Values.Any(v => v is not null && ids.Contains(v)))
                {
                    removed++;
                }
                else
                {
                    kept.Add(e);
                }
            }
            kept.ForEach(_events.Enqueue);
            return removed;
        }
    }

    public Task<IReadOnlyList<AuditEvent>> RecentAsync(int limit, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<AuditEvent>>([.. _events.Reverse().Take(limit)]);
}
