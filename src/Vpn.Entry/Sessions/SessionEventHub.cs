using System.Threading.Channels;

namespace Vpn.Entry.Sessions;

/// <summary>
/// This replica's open event streams, by customer. The store's one feed (PostgreSQL: one LISTEN connection per replica;
/// in memory: the session table's change hook) publishes here, and each event goes to the streams of its customer only —
/// no stream holds a database connection. Every stream has a small bounded queue: a publisher never waits for a slow
/// stream; a queue that is full instead marks its stream to catch up from the database (as after a lost LISTEN
/// connection, <see cref="ResyncAll"/>), so nothing is lost, only read again. Streams per customer and per replica are
/// bounded (429 too_many_streams, 503 server_busy).
/// </summary>
public sealed class SessionEventHub(EntryOptions options)
{
    /// <summary>Catch-up reads at once on this replica: after a LISTEN reconnect every stream reads its row, a few at a time.</summary>
    public const int ConcurrentCatchUps = 4;

    private readonly Dictionary<Guid, List<SessionEventSubscription>> _byCustomer = [];
    private readonly Lock _gate = new();
    private int _open;

    /// <summary>Held around each catch-up read, so a resync of thousands of streams cannot take the whole connection pool.</summary>
    internal SemaphoreSlim CatchUpGate { get; } = new(ConcurrentCatchUps, ConcurrentCatchUps);

    /// <summary>Streams open on this replica now.</summary>
    public int OpenStreams => Volatile.Read(ref _open);

    /// <summary>A new stream's queue, subscribed before the stream reads its session (so no change falls in between).</summary>
    public SessionEventSubscription Subscribe(Guid customerId)
    {
        var limits = options.SessionEvents;
        lock (_gate)
        {
            if (_open >= limits.MaxStreams)
            {
                throw new ApiProblemException(StatusCodes.Status503ServiceUnavailable, ErrorCodes.ServerBusy,
                    "This server holds as many event streams as it can; retry shortly (another replica may take it).");
            }
            if (!_byCustomer.TryGetValue(customerId, out var list))
            {
                _byCustomer[customerId] = list = [];
            }
            if (list.Count >= limits.MaxPerCustomer)
            {
                var seconds = (int)Math.Ceiling(limits.Heartbeat.TotalSeconds);
                throw new ApiProblemException(StatusCodes.Status429TooManyRequests, ErrorCodes.TooManyStreams,
                    $"This account already has {list.Count} event streams open; close one first.",
                    new Dictionary<string, object?> { [RateLimiting.RetryAfterExtension] = seconds });
            }
            var subscription = new SessionEventSubscription(this, customerId);
            list.Add(subscription);
            _open++;
            return subscription;
        }
    }

    /// <summary>Hands <paramref name="sessionEvent"/> to every open stream of its customer; never blocks.</summary>
    public void Publish(SessionEvent sessionEvent)
    {
        ArgumentNullException.ThrowIfNull(sessionEvent);
        SessionEventSubscription[] targets;
        lock (_gate)
        {
            if (!_byCustomer.TryGetValue(sessionEvent.CustomerId, out var list))
            {
                return;
            }
            targets = [.. list];
        }
        foreach (var target in targets)
        {
            target.Offer(sessionEvent);
        }
    }

    /// <summary>Every stream re-reads its session from the store: events may have been missed (the LISTEN connection was down).</summary>
    public void ResyncAll()
    {
        SessionEventSubscription[] targets;
        lock (_gate)
        {
            targets = [.. _byCustomer.Values.SelectMany(l => l)];
        }
        foreach (var target in targets)
        {
            target.RequestResync();
        }
    }

    internal void Remove(SessionEventSubscription subscription)
    {
        lock (_gate)
        {
            if (_byCustomer.TryGetValue(subscription.CustomerId, out var list) && list.Remove(subscription))
            {
                _open--;
                if (list.Count == 0)
                {
                    _byCustomer.Remove(subscription.CustomerId);
                }
            }
        }
    }
}

/// <summary>One stream's queue of events; dispose it when the stream ends.</summary>
public sealed class SessionEventSubscription : IDisposable
{
    // Wakes the reader for a resync when the queue is empty; the flag carries the request either way.
    private static readonly SessionEvent Wake = new(Guid.Empty, Guid.Empty, SessionEventKind.Ended, "", default, null);

    private readonly SessionEventHub _hub;
    // Wait mode: TryWrite never waits, it answers false when the queue is full.
    private readonly Channel<SessionEvent> _queue = Channel.CreateBounded<SessionEvent>(
        new BoundedChannelOptions(16) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
    private int _resync;

    internal SessionEventSubscription(SessionEventHub hub, Guid customerId)
    {
        _hub = hub;
        CustomerId = customerId;
    }

    public Guid CustomerId { get; }

    internal SessionEventHub Hub => _hub;

    public ChannelReader<SessionEvent> Reader => _queue.Reader;

    /// <summary>True once after a resync was requested (a full queue, a lost LISTEN connection): read the session again.</summary>
    public bool TakeResync() => Interlocked.Exchange(ref _resync, 0) == 1;

    /// <summary>The wake-up sentinel, not an event: check <see cref="TakeResync"/>.</summary>
    public static bool IsWake(SessionEvent sessionEvent) => ReferenceEquals(sessionEvent, Wake);

    internal void Offer(SessionEvent sessionEvent)
    {
        if (!_queue.Writer.TryWrite(sessionEvent))
        {
            RequestResync();
        }
    }

    internal void RequestResync()
    {
        Interlocked.Exchange(ref _resync, 1);
        _queue.Writer.TryWrite(Wake);
    }

    public void Dispose() => _hub.Remove(this);
}
