using System.Diagnostics.Metrics;
using Vpn.Contracts.Core.V1;
using Vpn.Core.Reconciliation;

namespace Vpn.Core.Dns;

/// <summary>
/// The last verdict of <see cref="ResolverMonitor"/>: what GetNodeStatus reports as <c>resolver</c>, what the heartbeat
/// folds into healthy, and the <c>vpn.core.resolver.healthy</c> gauge (1/0; no value while unchecked).
/// </summary>
public sealed class ResolverHealth
{
    private readonly TimeProvider _time;
    private volatile Verdict _last = new(false, "no check yet", 0);

    public ResolverHealth(CoreOptions options, IMeterFactory meters, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        Checked = options.ResolverCheck;
        Addresses = [.. ResolverConfig.GatewayAddresses(options).Select(a => a.ToString())];
        meters.Create(ReconcileMetrics.MeterName).CreateObservableGauge("vpn.core.resolver.healthy",
            () => Checked ? [new Measurement<int>(_last.Healthy ? 1 : 0)] : Array.Empty<Measurement<int>>(), "{bool}",
            "1 when every gateway address answered the last resolver check; absent when the resolver is not checked.");
    }

    /// <summary>Core checks its resolver (CORE_RESOLVER_CHECK); false: nothing is known and nothing is reported unhealthy.</summary>
    public bool Checked { get; }

    /// <summary>Where clients send DNS: the gateway addresses, IPv4 first.</summary>
    public IReadOnlyList<string> Addresses { get; }

    /// <summary>False only while the resolver is checked and the last check (or the lack of one yet) failed.</summary>
    public bool Healthy => !Checked || _last.Healthy;

    internal void Record(ResolverProbeResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        _last = new Verdict(result.Healthy, result.Detail, _time.GetUtcNow().ToUnixTimeMilliseconds());
    }

    public ResolverStatus ToStatus()
    {
        var last = _last;
        var status = new ResolverStatus
        {
            Checked = Checked,
            Healthy = Checked && last.Healthy,
            Detail = Checked ? last.Detail : "",
            LastCheckUnixMs = Checked ? last.UnixMs : 0,
        };
        status.Addresses.AddRange(Addresses);
        return status;
    }

    private sealed record Verdict(bool Healthy, string Detail, long UnixMs);
}
