using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Vpn.Entry.Privacy;

public sealed record RetentionWindows(int TerminatedSessionsDays, int AuditEventsDays, int IdempotencyRecordsHours, string RevokedTokens);

public sealed record PurgedRows(long Sessions, long AuditEvents, long IdempotencyRecords);

/// <summary>
/// Erasure (GDPR Art. 17): how a customer or an operator asks for it, what goes, and what stays afterwards and why.
/// </summary>
public sealed record ErasurePolicy(IReadOnlyList<string> Endpoints, IReadOnlyList<string> Deleted, IReadOnlyList<string> KeptAfterwards);

public sealed record CleanupState(int IntervalSecs, DateTimeOffset? LastRunAt, PurgedRows? LastPurged, DateTimeOffset? LastFailureAt, string? LastFailure);

/// <summary>GET /v1/admin/privacy/policy: what is kept, for how long, what logs may say, and what looks off.</summary>
public sealed record PrivacyPolicy(
    string Environment,
    string Store,
    RetentionWindows Retention,
    CleanupState Cleanup,
    string LogRedactionMode,
    IReadOnlyList<string> KeptWhileLive,
    IReadOnlyList<string> NeverStored,
    ErasurePolicy Erasure,
    IReadOnlyList<string> ComplianceHints);

public static class PrivacyEndpoints
{
    /// <summary>Longest retention of ended sessions that the hints accept without comment.</summary>
    public const int SessionRetentionHintDays = 30;

    public static IEndpointRouteBuilder MapPrivacyEndpoints(this IEndpointRouteBuilder app)
    {
        var privacy = app.MapGroup("/v1/admin/privacy").RequireAdmin().WithTags("Privacy");
        privacy.MapGet("/policy", Ok<PrivacyPolicy> (EntryOptions options, RetentionStatus status, TimeProvider time) =>
            TypedResults.Ok(Describe(options, status.Snapshot(), time.GetUtcNow())));
        privacy.MapGet("/conformance", async Task<Ok<ConformanceReport>> (PrivacyConformance conformance, CancellationToken ct) =>
            TypedResults.Ok(await conformance.CheckAsync(ct)));
        return app;
    }

    /// <summary>The same for every deployment: erasure deletes in one transaction; nothing identifying is kept.</summary>
    public static readonly ErasurePolicy Erasure = new(
        ["DELETE /v1/me (the customer)", "DELETE /v1/admin/customers/{customer_id} (an operator)"],
        [
            "the customer, its sign-in identities (issuer and subject), subscription periods (there is no separate billing history), "
                + "devices and their public keys, sessions of every state, Idempotency-Key records",
            "audit events whose actor, subject or details name the customer or one of its sessions or devices",
            "the peer of its active session, removed from its node at once",
        ],
        [
            "a revocation entry keyed by the SHA-256 of the customer id (it names no one who does not already hold the id), "
                + "so that every replica refuses the customer's tokens and the id cannot be created again; deleted when its last token has expired (token lifetime + clock skew)",
            "one audit event 'customer.erased' that names no identifier (who initiated it, how many sessions it ended)",
            "aggregated counters without identifiers (/metrics: sessions started and ended, customers erased)",
            "backups of the database, if the operator keeps any, until they rotate out",
        ]);

    public static PrivacyPolicy Describe(EntryOptions options,
        (DateTimeOffset? LastSuccessAt, PurgeCounts? LastPurged, DateTimeOffset? LastFailureAt, string? LastFailure) cleanup, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(options);
        var privacy = options.Privacy;
        var sessionDays = (int)privacy.SessionRetention.TotalDays;
        var mode = privacy.LogRedaction.ToString().ToLowerInvariant();
        var hints = new List<string>();
        if (privacy.LogRedaction != LogRedactionMode.Strict)
        {
            hints.Add(privacy.LogRedaction == LogRedactionMode.Off
                ? "Log redaction is off: customer, session and device identifiers appear in logs as they are. Production requires strict."
                : "Log redaction is partial: identifiers appear in logs as keyed pseudonyms that correlate one person's lines. Production requires strict.");
        }
        if (sessionDays > SessionRetentionHintDays)
        {
            hints.Add(string.Create(CultureInfo.InvariantCulture,
                $"Ended sessions (who used which node and tunnel address, when) are kept {sessionDays} days; a no-logs service usually keeps them at most {SessionRetentionHintDays}."));
        }
        if (sessionDays == 0)
        {
            hints.Add(string.Create(CultureInfo.InvariantCulture,
                $"Ended sessions are deleted at the next cleanup pass (every {(int)privacy.CleanupInterval.TotalSeconds} s)."));
        }
        var interval = privacy.CleanupInterval;
        if (cleanup.LastSuccessAt is null)
        {
            hints.Add("Retention cleanup has not completed a pass since this replica started.");
        }
        else if (now - cleanup.LastSuccessAt > 3 * interval)
        {
            hints.Add("Retention cleanup has not completed a pass for more than three intervals: expired data is piling up.");
        }
        if (cleanup.LastFailure is not null)
        {
            hints.Add($"The last retention cleanup pass failed ({cleanup.LastFailure}).");
        }
        if (options.DatabaseConnectionString is null)
        {
            hints.Add("In-memory store: nothing is kept beyond this process; not for production.");
        }
        return new PrivacyPolicy(
            options.Environment,
            options.DatabaseConnectionString is null ? "memory" : "postgres",
            new RetentionWindows(sessionDays, (int)privacy.AuditRetention.TotalDays, 24, "until the token expires"),
            new CleanupState((int)interval.TotalSeconds, cleanup.LastSuccessAt,
                cleanup.LastPurged is { } p ? new PurgedRows(p.Sessions, p.AuditEvents, p.IdempotencyRecords) : null,
                cleanup.LastFailureAt, cleanup.LastFailure),
            mode,
            [
                "the session: customer, device public key, node, tunnel address, region filters, start time",
                "the SHA-256 of the session key (never the key)",
            ],
            [
                "traffic contents, destinations or DNS queries",
                "client IP addresses (rate limiting keeps them in memory for one window only)",
                "email addresses or names from the sign-in provider (only its issuer and subject)",
                "WireGuard private keys",
            ],
            Erasure,
            hints);
    }
}
