using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Features;

namespace Vpn.Entry.Audit;

/// <summary>
/// GET /v1/admin/audit/export?since=&amp;until=&amp;kind=&amp;format=csv|ndjson — the audit trail for operators, streamed
/// oldest first. The people in it appear as the logs show them (APP_LOG_REDACTION_MODE): under strict, no customer,
/// session, device or token id at all — the actor unless it is a role, the subject unless it is a node or a plan, and
/// every detail value that is an id are redacted; under partial they are keyed pseudonyms.
/// </summary>
public static partial class AuditExportEndpoints
{
    public const string CsvContentType = "text/csv; charset=utf-8";
    public const string NdjsonContentType = "application/x-ndjson";

    private static readonly HashSet<string> Roles = new(StringComparer.Ordinal) { "admin", "system", "core", "customer", "anonymous" };

    public static IEndpointRouteBuilder MapAuditExportEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1/admin/audit").RequireAdmin().WithTags("Privacy")
            .MapGet("/export", (string? since, string? until, string? kind, string? format, IAuditLog audit, Privacy.LogIdentifiers identifiers,
                EntryOptions options, HttpContext http) =>
            {
                var query = new AuditQuery(Time(since, "since"), Time(until, "until"), Kind(kind));
                var ndjson = (format ?? "ndjson") switch
                {
                    "ndjson" => true,
                    "csv" => false,
                    _ => throw ApiProblemException.BadRequest("'format' must be csv or ndjson."),
                };
                var redact = options.Privacy.LogRedaction != Privacy.LogRedactionMode.Off;
                var ct = http.RequestAborted;
                return TypedResults.Stream(async body =>
                {
                    http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
                    await WriteAsync(body, audit.ExportAsync(query, ct), e => redact ? Redact(e, identifiers) : e, ndjson, ct);
                }, ndjson ? NdjsonContentType : CsvContentType, ndjson ? "audit.ndjson" : "audit.csv");
            })
            .Produces<string>(StatusCodes.Status200OK, NdjsonContentType, CsvContentType);
        return app;
    }

    /// <summary>The event as an export shows it under partial or strict redaction.</summary>
    public static AuditEvent Redact(AuditEvent auditEvent, Privacy.LogIdentifiers identifiers)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        ArgumentNullException.ThrowIfNull(identifiers);
        var operatorObject = auditEvent.Action.StartsWith("node.", StringComparison.Ordinal) || auditEvent.Action.StartsWith("plan.", StringComparison.Ordinal);
        return auditEvent with
        {
            Actor = Roles.Contains(auditEvent.Actor) ? auditEvent.Actor : identifiers.Of(auditEvent.Actor),
            Subject = operatorObject || auditEvent.Subject is null ? auditEvent.Subject : identifiers.Of(auditEvent.Subject),
            Details = auditEvent.Details.ToDictionary(d => d.Key, d => d.Value is { } v && IdLike().IsMatch(v) ? identifiers.Of(v) : d.Value),
        };
    }

    private static async Task WriteAsync(Stream body, IAsyncEnumerable<AuditEvent> events, Func<AuditEvent, AuditEvent> show, bool ndjson,
        CancellationToken cancellationToken)
    {
        await using var enumerator = events.GetAsyncEnumerator(cancellationToken);
        // The query runs before a byte is written: a store outage still becomes a problem+json answer.
        var hasEvent = await enumerator.MoveNextAsync();
        await using var writer = new StreamWriter(body, new UTF8Encoding(false), bufferSize: 16 * 1024, leaveOpen: true);
        if (!ndjson)
        {
            await writer.WriteAsync("occurred_at,actor,action,subject,details\r\n");
        }
        var line = new StringBuilder(256);
        for (var written = 1; hasEvent; written++)
        {
            var e = show(enumerator.Current);
            line.Clear();
            if (ndjson)
            {
                line.Append(JsonSerializer.Serialize(new
                {
                    occurred_at = e.OccurredAt.UtcDateTime, actor = e.Actor, action = e.Action, subject = e.Subject, details = e.Details,
                })).Append('\n');
            }
            else
            {
                line.Append(e.OccurredAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture)).Append(',');
                Subscriptions.SubscriptionCsv.AppendField(line, e.Actor).Append(',');
                Subscriptions.SubscriptionCsv.AppendField(line, e.Action).Append(',');
                Subscriptions.SubscriptionCsv.AppendField(line, e.Subject ?? "").Append(',');
                Subscriptions.SubscriptionCsv.AppendField(line, JsonSerializer.Serialize(e.Details)).Append("\r\n");
            }
            await writer.WriteAsync(line, cancellationToken);
            if (written % 256 == 0)
            {
                await writer.FlushAsync(cancellationToken);
            }
            hasEvent = await enumerator.MoveNextAsync();
        }
        await writer.FlushAsync(cancellationToken);
    }

    private static DateTimeOffset? Time(string? value, string name) =>
        value is null ? null
        : DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at) ? at
        : throw ApiProblemException.BadRequest($"'{name}' must be an RFC 3339 time.");

    private static string? Kind(string? value) =>
        value is null || KindPattern().IsMatch(value) ? value : throw ApiProblemException.BadRequest("'kind' must be an action or its family (a-z, 0-9, _ and .).");

    [GeneratedRegex("^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)*$")]
    private static partial Regex KindPattern();

    // A customer, session, device or token id (a UUID), or a key or hash written as base64/hex of 16 bytes or more.
    [GeneratedRegex("^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Za-z0-9+/_-]{22,}={0,2})$")]
    private static partial Regex IdLike();
}
