using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Vpn.Domain.Subscriptions;

namespace Vpn.Entry.Subscriptions;

/// <summary>
/// The admin book of customers: list (keyset pages), count, CSV export and one customer's history. The literal
/// segments <c>count</c> and <c>export</c> outrank the <c>{customer_id}</c> parameter of SubscriptionEndpoints in routing.
/// </summary>
public static class SubscriptionReportEndpoints
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 500;

    public static IEndpointRouteBuilder MapSubscriptionReportEndpoints(this IEndpointRouteBuilder app)
    {
        var reports = app.MapGroup("/v1/admin/subscriptions").RequireAdmin().WithTags("Subscriptions");

        reports.MapGet("/", async Task<Ok<SubscriptionPage>> (string? status, [FromQuery(Name = "plan_code")] string? planCode, string? limit,
            string? cursor, ISubscriptionReportStore store, CancellationToken ct) =>
        {
            var filter = ParseFilter(status, planCode);
            var size = ParseLimit(limit);
            Guid? after = null;
            if (cursor is not null && !SubscriptionCursor.TryDecode(cursor, out after))
            {
                throw ApiProblemException.BadRequest("'cursor' is not a cursor issued by this listing.");
            }
            // One row more than asked tells whether another page exists, so the last page says next_cursor null.
            var rows = await store.ListCurrentAsync(filter, after, size + 1, ct);
            return rows.Count > size
                ? TypedResults.Ok(new SubscriptionPage([.. rows.Take(size)], SubscriptionCursor.Encode(rows[size - 1].CustomerId)))
                : TypedResults.Ok(new SubscriptionPage(rows, null));
        });

        reports.MapGet("/count", async Task<Ok<SubscriptionCount>> (string? status, [FromQuery(Name = "plan_code")] string? planCode,
            ISubscriptionReportStore store, CancellationToken ct) =>
            TypedResults.Ok(new SubscriptionCount(await store.CountCurrentAsync(ParseFilter(status, planCode), ct))));

        reports.MapGet("/export", (string? status, [FromQuery(Name = "plan_code")] string? planCode, ISubscriptionReportStore store,
            HttpContext http) =>
        {
            var filter = ParseFilter(status, planCode);
            var ct = http.RequestAborted;
            return TypedResults.Stream(
                body =>
                {
                    http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
                    return SubscriptionCsv.WriteAsync(body, store.ExportCurrentAsync(filter, ct), ct);
                },
                SubscriptionCsv.ContentType, "subscriptions.csv");
        }).Produces<string>(StatusCodes.Status200OK, SubscriptionCsv.ContentType);

        reports.MapGet("/{customer_id}/history", async Task<Ok<SubscriptionHistory>> (string customer_id, ISubscriptionReportStore store, CancellationToken ct) =>
        {
            var customerId = Guid.TryParseExact(customer_id, "D", out var id) ? id : throw ApiProblemException.BadRequest("'customer_id' must be a UUID.");
            var items = await store.GetHistoryAsync(customerId, ct);
            return items.Count > 0
                ? TypedResults.Ok(new SubscriptionHistory(items))
                : throw ApiProblemException.NotFound(ErrorCodes.SubscriptionNotFound, "The customer has no subscription.");
        });

        return app;
    }

    private static SubscriptionFilter ParseFilter(string? status, string? planCode)
    {
        if (status is not null && !SubscriptionStatus.IsKnown(status))
        {
            throw ApiProblemException.BadRequest($"'status' must be one of {string.Join(", ", SubscriptionStatus.All)}.");
        }
        return new SubscriptionFilter(status, planCode is null ? null : Validation.RequireCode(planCode, "plan_code"));
    }

    private static int ParseLimit(string? limit)
    {
        if (limit is null)
        {
            return DefaultLimit;
        }
        return int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value is >= 1 and <= MaxLimit
            ? value
            : throw ApiProblemException.BadRequest($"'limit' must be an integer between 1 and {MaxLimit}.");
    }
}

/// <summary>
/// The export's CSV (RFC 4180): a header line, CRLF line ends, UTF-8 without a byte order mark; a field holding a
/// comma, a double quote, CR or LF is enclosed in double quotes with its quotes doubled. Rows are written as the store
/// produces them and flushed every <see cref="LineStream.FlushEvery"/> rows, so the service holds a few KiB whatever the row count.
/// </summary>
internal static class SubscriptionCsv
{
    public const string ContentType = "text/csv; charset=utf-8";
    public const string Header = "customer_id,plan_code,plan_name,status,max_devices,allowed_regions,started_at,ended_at";
    public static Task WriteAsync(Stream body, IAsyncEnumerable<SubscriptionExportRow> rows, CancellationToken cancellationToken) =>
        LineStream.WriteAsync(body, rows, Header + "\r\n", (line, row) => AppendRow(line, row), cancellationToken);

    // Formatted straight into the line (no per-field strings): the export allocates little per row, so the GC's
    // allocation budget, not the row count, bounds what a long export adds to the process.
    internal static StringBuilder AppendRow(StringBuilder line, SubscriptionExportRow row)
    {
        var s = row.Subscription;
        var invariant = CultureInfo.InvariantCulture;
        line.Append(invariant, $"{s.CustomerId:D},");
        AppendField(line, s.PlanCode).Append(',');
        AppendField(line, row.PlanName).Append(',');
        AppendField(line, s.Status).Append(',');
        line.Append(invariant, $"{s.MaxDevices},");
        AppendField(line, s.AllowedRegions.Count == 1 ? s.AllowedRegions[0] : string.Join(';', s.AllowedRegions)).Append(',');
        line.Append(invariant, $"{s.StartedAt.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'},");
        if (s.EndedAt is { } ended)
        {
            line.Append(invariant, $"{ended.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'}");
        }
        return line.Append("\r\n");
    }

    /// <summary>
    /// One text field. Formula injection guard: spreadsheet programs run a cell that begins with '=', '+', '-' or '@'
    /// (and, per OWASP's CSV injection advice, a tab or CR) as a formula, so such a field gets a leading apostrophe,
    /// which makes them show it as text. Plan names are operator-typed free text, hence the guard; the apostrophe is
    /// part of the exported value. Quoting (RFC 4180) is applied after the guard.
    /// </summary>
    internal static StringBuilder AppendField(StringBuilder line, string value)
    {
        var guarded = value.Length > 0 && value[0] is '=' or '+' or '-' or '@' or '\t' or '\r';
        if (value.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            return (guarded ? line.Append('\'') : line).Append(value);
        }
        line.Append('"');
        if (guarded)
        {
            line.Append('\'');
        }
        return line.Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
    }

    /// <summary>Timestamps as the export writes them: RFC 3339 in UTC with the fraction PostgreSQL keeps (trailing zeros and an all-zero fraction dropped).</summary>
    internal static string FormatTime(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
}
