using Microsoft.Extensions.Compliance.Classification;
using Vpn.ServiceDefaults;

namespace Vpn.Entry.Privacy;

/// <summary>How identifiers of people (customer, session, device ids) appear in logs.</summary>
public enum LogRedactionMode
{
    /// <summary>As they are: for local debugging only.</summary>
    Off,

    /// <summary>A keyed hash (HMAC-SHA256) per identifier: lines of one customer correlate, the id itself is not there.</summary>
    Partial,

    /// <summary>Erased.</summary>
    Strict,
}

/// <summary>What entry keeps about people and for how long, and what its logs may say about them.</summary>
public sealed class PrivacyOptions
{
    /// <summary>The data class of identifiers that point at a person: customer, session, device and token ids.</summary>
    public static readonly DataClassification PersonalIdentifier = new("vpn", "personal_identifier");

    /// <summary>Terminated and failed sessions are deleted this long after they ended (APP_SESSION_RETENTION_DAYS, default 7).</summary>
    public TimeSpan SessionRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Audit events are deleted this long after they happened (APP_AUDIT_RETENTION_DAYS, default 90).</summary>
    public TimeSpan AuditRetention { get; init; } = TimeSpan.FromDays(90);

    /// <summary>Time between cleanup passes (APP_PRIVACY_CLEANUP_SECS, default 3600).</summary>
    public TimeSpan CleanupInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>APP_LOG_REDACTION_MODE: off | partial | strict. Default strict in production (and required there), partial elsewhere.</summary>
    public LogRedactionMode LogRedaction { get; init; } = LogRedactionMode.Partial;

    /// <summary>
    /// The HMAC key of partial redaction (APP_LOG_REDACTION_KEY or _FILE, base64 of at least 32 bytes). Unset: a random key
    /// per process, so pseudonyms correlate within one process only.
    /// </summary>
    public string? RedactionKey { get; init; }

    public static PrivacyOptions Load(IConfiguration configuration, bool production, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(problems);
        var mode = production ? LogRedactionMode.Strict : LogRedactionMode.Partial;
        if (configuration["APP_LOG_REDACTION_MODE"] is { Length: > 0 } text)
        {
            // One of the three names only: Enum.TryParse would also take numbers and flag lists ("off,strict" is Strict).
            if (ParseMode(text.Trim()) is { } parsed)
            {
                mode = parsed;
            }
            else
            {
                problems.Add("APP_LOG_REDACTION_MODE must be off, partial or strict.");
                mode = LogRedactionMode.Strict;
            }
        }
        if (production && mode != LogRedactionMode.Strict)
        {
            problems.Add("APP_LOG_REDACTION_MODE must be strict in production.");
        }
        var key = Settings.Secret(configuration, "APP_LOG_REDACTION_KEY", problems);
        if (!string.IsNullOrEmpty(key) && !IsKey(key))
        {
            // Never echo the value.
            problems.Add("APP_LOG_REDACTION_KEY must be the base64 of at least 32 bytes.");
            key = null;
        }
        return new PrivacyOptions
        {
            SessionRetention = TimeSpan.FromDays(Settings.Number(configuration, "APP_SESSION_RETENTION_DAYS", 7, 0, 3650, problems)),
            AuditRetention = TimeSpan.FromDays(Settings.Number(configuration, "APP_AUDIT_RETENTION_DAYS", 90, 1, 3650, problems)),
            CleanupInterval = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_PRIVACY_CLEANUP_SECS", 3600, 10, 86_400, problems)),
            LogRedaction = mode,
            RedactionKey = string.IsNullOrEmpty(key) ? null : key,
        };
    }

    private static LogRedactionMode? ParseMode(string text) =>
        string.Equals(text, "off", StringComparison.OrdinalIgnoreCase) ? LogRedactionMode.Off
        : string.Equals(text, "partial", StringComparison.OrdinalIgnoreCase) ? LogRedactionMode.Partial
        : string.Equals(text, "strict", StringComparison.OrdinalIgnoreCase) ? LogRedactionMode.Strict
        : null;

    private static bool IsKey(string value)
    {
        var bytes = new byte[value.Length];
        return Convert.TryFromBase64String(value, bytes, out var written) && written >= 32;
    }
}
