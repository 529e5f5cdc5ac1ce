namespace Vpn.Core.Reconciliation;

public enum DesiredSessionState
{
    /// <summary>Entry has called (or is about to call) Connect and not yet committed the session; no address yet, or not final.</summary>
    Provisioning,

    /// <summary>The database says the session is live on this node with <see cref="DesiredSession.Address"/>.</summary>
    Active,
}

/// <summary>One session the database places on this node.</summary>
/// <param name="Address">The client's tunnel address (a /32); null while provisioning.</param>
/// <param name="Address6">The client's IPv6 tunnel address as the database holds it; null for sessions started before
/// dual stack (core pairs one with the IPv4 address either way).</param>
/// <param name="ClaimSeq">The order of the session's claim (0 = not known; see <see cref="Control.PeerLease"/>).</param>
/// <param name="Usage">The counters entry last recorded for the session (null before its first report; <see cref="Usage.UsageMeter"/>).</param>
public sealed record DesiredSession(Guid SessionId, WireGuardKey PublicKey, IPAddress? Address, DesiredSessionState State, IPAddress? Address6 = null,
    ulong ClaimSeq = 0, Usage.SessionUsage? Usage = null);

/// <summary>The database's view of this node at <paramref name="GeneratedAt"/> (entry's clock).</summary>
public sealed record DesiredSnapshot(DateTimeOffset GeneratedAt, IReadOnlyList<DesiredSession> Sessions);

/// <summary>Where reconciliation pulls the truth from (entry's internal API in production).</summary>
public interface IDesiredStateSource
{
    /// <summary>
    /// The sessions the database places on this node. Throws <see cref="DesiredStateUnavailableException"/> when they
    /// cannot be known now (unreachable, non-200, malformed or inconsistent answer); never returns a partial list.
    /// </summary>
    Task<DesiredSnapshot> FetchAsync(CancellationToken cancellationToken);
}

/// <summary>The desired state could not be obtained; the message is safe to log (no token, no body).</summary>
public sealed class DesiredStateUnavailableException : Exception
{
    public DesiredStateUnavailableException()
    {
    }

    public DesiredStateUnavailableException(string message)
        : base(message)
    {
    }

    public DesiredStateUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
