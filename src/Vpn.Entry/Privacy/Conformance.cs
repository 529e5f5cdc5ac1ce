using System.Globalization;
using System.Text.RegularExpressions;

namespace Vpn.Entry.Privacy;

/// <summary>A column of the store's schema, as the catalog names it.</summary>
public sealed record StoredColumn(string Table, string Column, string DataType);

/// <summary>What the store holds that retention promises not to: counts of rows past their windows, and its columns.</summary>
/// <param name="UsageTotalsPastWindow">Billing periods' data totals last updated more than <see cref="Usage.UsageRetention.KeptFor"/> before the cutoff.</param>
public sealed record PrivacyFacts(long EndedSessionsPastWindow, long AuditEventsPastWindow, long IdempotencyRecordsPastWindow,
    IReadOnlyList<StoredColumn>? Columns, long UsageTotalsPastWindow = 0);

/// <summary>
/// Reads <see cref="PrivacyFacts"/> from the live store: the rows older than the given moments, and its schema. Usage
/// totals count when last updated before <c>expiredBefore - UsageRetention.KeptFor</c>.
/// </summary>
public interface IPrivacyFactsStore
{
    Task<PrivacyFacts> ReadAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset expiredBefore, CancellationToken cancellationToken);
}

public sealed record ConformanceCheck(string Name, bool Ok, string Detail);

public sealed record ConformanceReport(bool Conformant, IReadOnlyList<ConformanceCheck> Checks);

/// <summary>
/// GET /v1/admin/privacy/conformance: a proof, computed from the live database, that entry forgets as it says. No ended
/// session, audit event, Idempotency-Key record or billing period's data total is older than its window (plus one cleanup interval: a pass deletes
/// what crossed the window since the last one); no column anywhere in the schema can hold a client's source address
/// (read from the catalog, so a new column breaks it); and logs are strictly redacted, as production requires.
/// </summary>
public sealed partial class PrivacyConformance(IPrivacyFactsStore store, EntryOptions options, TimeProvider time)
{
    /// <summary>
    /// Columns whose names match <see cref="AddressLike"/> but hold no client address: the tunnel addresses the node
    /// allocated (deleted with the session) and the node's own endpoints.
    /// </summary>
    public static readonly IReadOnlySet<string> KnownNonClientColumns = new HashSet<string>(StringComparer.Ordinal)
    {
        "sessions.assigned_address", "sessions.assigned_address_v6", "vpn_nodes.public_endpoint", "vpn_nodes.core_endpoint",
    };

    public async Task<ConformanceReport> CheckAsync(CancellationToken cancellationToken)
    {
        var privacy = options.Privacy;
        var now = time.GetUtcNow();
        var slack = privacy.CleanupInterval;
        var facts = await store.ReadAsync(now - privacy.SessionRetention - slack, now - privacy.AuditRetention - slack, now - slack, cancellationToken);
        var within = $"older than its window plus one cleanup interval ({Hours(slack)})";
        var checks = new List<ConformanceCheck>
        {
            Rows("ended_sessions", facts.EndedSessionsPastWindow, $"ended sessions {within}; window {Days(privacy.SessionRetention)}"),
            Rows("audit_events", facts.AuditEventsPastWindow, $"audit events {within}; window {Days(privacy.AuditRetention)}"),
            Rows("idempotency_records", facts.IdempotencyRecordsPastWindow, $"expired Idempotency-Key records {within}"),
            Rows("usage_totals", facts.UsageTotalsPastWindow, $"billing periods' data totals {within}; window {Days(Usage.UsageRetention.KeptFor)} after the last update"),
            ClientAddressColumns(facts.Columns),
            new("log_redaction", privacy.LogRedaction == LogRedactionMode.Strict,
                $"log redaction {privacy.LogRedaction.ToString().ToLowerInvariant()}; production requires strict"),
        };
        return new ConformanceReport(checks.TrueForAll(c => c.Ok), checks);
    }

    /// <summary>The columns that could hold a client's address: an address type, or an address-like name not known to be harmless.</summary>
    public static IReadOnlyList<StoredColumn> SuspectColumns(IEnumerable<StoredColumn> columns) =>
    [
        .. columns.Where(c => c.DataType is "inet" or "cidr" or "macaddr" or "macaddr8"
            || (AddressLike().IsMatch(c.Column) && !KnownNonClientColumns.Contains($"{c.Table}.{c.Column}"))),
    ];

    private static ConformanceCheck ClientAddressColumns(IReadOnlyList<StoredColumn>? columns)
    {
        if (columns is null)
        {
            return new("no_client_address_columns", true, "in-memory store: nothing is written anywhere");
        }
        var suspect = SuspectColumns(columns);
        return suspect.Count == 0
            ? new("no_client_address_columns", true, string.Create(CultureInfo.InvariantCulture,
                $"{columns.Count} columns checked; none has an address type or an address-like name beyond the tunnel addresses and node endpoints"))
            : new("no_client_address_columns", false, "columns that could hold a client address: " + string.Join(", ", suspect.Select(c => $"{c.Table}.{c.Column} ({c.DataType})")));
    }

    private static ConformanceCheck Rows(string name, long count, string what) =>
        new(name, count == 0, string.Create(CultureInfo.InvariantCulture, $"{count} {what}"));

    private static string Days(TimeSpan span) => string.Create(CultureInfo.InvariantCulture, $"{span.TotalDays:0.##} d");

    private static string Hours(TimeSpan span) => string.Create(CultureInfo.InvariantCulture, $"{span.TotalHours:0.##} h");

    [GeneratedRegex(@"(^|_)(ip|ips|ipv4|ipv6|ip_?addr(ess)?|addr|address(es)?|endpoint|remote|source|src|peer_?addr|forwarded(_for)?|user_?agent|mac|hostname)(_|$)",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex AddressLike();
}
