using System.Globalization;
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
        return auditEvent with
        {
            Actor = AuditPeople.Actor(auditEvent, identifiers),
            Subject = AuditPeople.SubjectIsOperatorObject(auditEvent) || auditEvent.Subject is null ? auditEvent.Subject : identifiers.Of(auditEvent.Subject),
            Details = auditEvent.Details.ToDictionary(d => d.Key, d => d.Value is { } v && IdLike().IsMatch(v) ? identifiers.Of(v) : d.Value),
        };
    }

    private static Task WriteAsync(Stream body, IAsyncEnumerable<AuditEvent> events, Func<AuditEvent, AuditEvent> show, bool ndjson,
        CancellationToken cancellationToken) =>
        LineStream.WriteAsync(body, events, ndjson ? null : "occurred_at,actor,action,subject,details\r\n", (line, stored) =>
        {
            var e = show(stored);
            if (ndjson)
            {
                line.Append(JsonSerializer.Serialize(new
                {
                    occurred_at = e.OccurredAt.UtcDateTime, actor = e.Actor, action = e.Action, subject = e.Subject, details = e.Details,
                })).Append('\n');
                return;
            }
            line.Append(Subscriptions.SubscriptionCsv.FormatTime(e.OccurredAt)).Append(',');
            Subscriptions.SubscriptionCsv.AppendField(line, e.Actor).Append(',');
            Subscriptions.SubscriptionCsv.AppendField(line, e.Action).Append(',');
            Subscriptions.SubscriptionCsv.AppendField(line, e.Subject ?? "").Append(',');
            Subscriptions.SubscriptionCsv.AppendField(line, JsonSerializer.Serialize(e.Details)).Append("\r\n");
        }, cancellationToken);

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
