namespace Vpn.Core.Reconciliation;

/// <summary>Asks for a reconciliation pass soon, e.g. after a UAPI write failed (a set is not atomic). Requests coalesce.</summary>
public sealed class ReconcileSignal : IDisposable
{
    private readonly SemaphoreSlim _requested = new(0, 1);
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <summary>Safe from any thread at any time, also during shutdown.</summary>
    public void Request()
    {
        lock (_gate)
        {
            if (!_disposed && _requested.CurrentCount == 0)
            {
                _requested.Release();
            }
        }
    }

    /// <summary>A pass is starting: requests made so far are answered by it.</summary>
    public void Clear() => _requested.Wait(0);

    /// <summary>True when a request arrived (and is consumed) within <paramref name="timeout"/>.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _requested.WaitAsync(timeout, cancellationToken);

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _requested.Dispose();
        }
    }
}
