using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using Microsoft.Extensions.Compliance.Classification;
using Microsoft.Extensions.Compliance.Redaction;

namespace Vpn.Entry.Privacy;

/// <summary>
/// Identifiers of people (customer, session, device ids) as log lines may show them, per APP_LOG_REDACTION_MODE, through
/// the redactors of Microsoft.Extensions.Compliance.Redaction: as they are (off), a keyed HMAC pseudonym (partial) or
/// "[redacted]" (strict). Log messages take identifiers only through this.
/// </summary>
public sealed class LogIdentifiers(IRedactorProvider redactors)
{
    private readonly Redactor _redactor = redactors.GetRedactor(new DataClassificationSet(PrivacyOptions.PersonalIdentifier));

    public string Of(Guid id) => Of(id.ToString());

    public string Of(string? id)
    {
        if (string.IsNullOrEmpty(id))
        {
            return "-";
        }
        var redacted = _redactor.Redact(id);
        return redacted.Length == 0 ? "[redacted]" : redacted;
    }
}

public static class LogRedactionServiceCollectionExtensions
{
    [SuppressMessage("Usage", "EXTEXP0002", Justification = "The HMAC redactor is the library's keyed pseudonym, the point of partial mode.")]
    public static IServiceCollection AddLogRedaction(this IServiceCollection services, PrivacyOptions privacy)
    {
        ArgumentNullException.ThrowIfNull(privacy);
        var personal = new DataClassificationSet(PrivacyOptions.PersonalIdentifier);
        services.AddRedaction(builder =>
        {
            switch (privacy.LogRedaction)
            {
                case LogRedactionMode.Off:
                    builder.SetRedactor<NullRedactor>(personal);
                    break;
                case LogRedactionMode.Partial:
#pragma warning disable EXTEXP0002
                    builder.SetHmacRedactor(options =>
                    {
                        // Without a configured key a random one: pseudonyms then correlate within this process only.
                        options.Key = privacy.RedactionKey ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
                        options.KeyId = privacy.RedactionKey is null ? null : 1;
                    }, personal);
#pragma warning restore EXTEXP0002
                    break;
                default:
                    builder.SetRedactor<ErasingRedactor>(personal);
                    break;
            }
            // Anything classified but not listed above is erased.
            builder.SetFallbackRedactor<ErasingRedactor>();
        });
        services.AddSingleton<LogIdentifiers>();
        return services;
    }
}
