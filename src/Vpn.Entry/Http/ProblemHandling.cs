using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Npgsql;

namespace Vpn.Entry.Http;

/// <summary>
/// The one mapping from failures to problem+json: contract errors keep their code; malformed requests become
/// invalid_request; an unreachable database is 503; anything else is a 500 without details (logged once, here).
/// </summary>
public sealed partial class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger,
    Data.Postgres.PostgresOutageRecovery? outageRecovery = null) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var (status, code, detail, extensions) = exception switch
        {
            ApiProblemException p => (p.Status, p.Code, p.Message, p.Extensions),
            BadHttpRequestException b => (b.StatusCode, ErrorCodes.InvalidRequest, DescribeBadRequest(b), Empty),
            JsonException => (StatusCodes.Status400BadRequest, ErrorCodes.InvalidRequest, "The request body is not valid JSON for this endpoint.", Empty),
            // The customers_not_erased trigger (migration 0004): this id was erased and cannot come back yet.
            PostgresException { SqlState: ErasedCustomerSqlState } =>
                (StatusCodes.Status409Conflict, ErrorCodes.CustomerErased, "This customer was erased; its id cannot be used again.", Empty),
            NpgsqlException or TimeoutException when Data.StoreOutages.IsOutage(exception) =>
                (StatusCodes.Status503ServiceUnavailable, ErrorCodes.StoreUnavailable, "The data store is unavailable; retry later.", Empty),
            _ => (StatusCodes.Status500InternalServerError, ErrorCodes.Internal, "An unexpected error occurred.", Empty),
        };
        if (status == StatusCodes.Status503ServiceUnavailable && code == ErrorCodes.StoreUnavailable)
        {
            // An expected outage: one line per request, not a stack trace each. The next request dials afresh (a switchover).
            LogStoreUnavailable(logger, exception is PostgresException p ? $"{p.GetType().Name} {p.SqlState}" : exception.GetType().Name);
            outageRecovery?.OnOutage();
        }
        else if (status >= 500 && exception is not ApiProblemException)
        {
            LogUnhandled(logger, exception.GetType().Name, exception);
        }
        httpContext.Response.StatusCode = status;
        if (status == StatusCodes.Status401Unauthorized && code is ErrorCodes.MissingToken or ErrorCodes.InvalidToken or ErrorCodes.TokenExpired or ErrorCodes.TokenRevoked)
        {
            // RFC 6750 §3: tell the client which scheme to use and, for a bad token, that it must get a new one.
            httpContext.Response.Headers.WWWAuthenticate = code == ErrorCodes.MissingToken ? "Bearer" : "Bearer error=\"invalid_token\"";
        }
        if (status == StatusCodes.Status429TooManyRequests && extensions.TryGetValue(RateLimiting.RetryAfterExtension, out var retryAfter) && retryAfter is int seconds)
        {
            // Budgets enforced outside the rate-limiter middleware (failed credentials) answer exactly as its rejections do.
            httpContext.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails = Create(status, code, detail, extensions),
        });
    }

    public static ProblemDetails Create(int status, string code, string detail, IReadOnlyDictionary<string, object?>? extensions = null)
    {
        var problem = new ProblemDetails
        {
            Type = $"https://vpn.invalid/problems/{code}",
            Title = Titles.GetValueOrDefault(status, "Error"),
            Status = status,
            Detail = detail,
        };
        problem.Extensions["code"] = code;
        foreach (var (key, value) in extensions ?? Empty)
        {
            problem.Extensions[key] = value;
        }
        return problem;
    }

    private static readonly IReadOnlyDictionary<string, object?> Empty = new Dictionary<string, object?>();

    /// <summary>Raised by the trigger customers_not_erased when an erased customer id is inserted again.</summary>
    public const string ErasedCustomerSqlState = "VE001";

    private static readonly Dictionary<int, string> Titles = new()
    {
        [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found", [409] = "Conflict",
        [413] = "Payload Too Large", [415] = "Unsupported Media Type", [422] = "Unprocessable Content", [429] = "Too Many Requests",
        [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable",
    };

    // Kestrel's messages name no secrets, but keep ours generic and stable.
    private static string DescribeBadRequest(BadHttpRequestException e) => e.StatusCode switch
    {
        StatusCodes.Status413PayloadTooLarge => "The request body exceeds 64 KiB.",
        StatusCodes.Status415UnsupportedMediaType => "The request body must be application/json.",
        _ => e.InnerException is JsonException ? "The request body is not valid JSON for this endpoint." : "The request is malformed.",
    };

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Data store unavailable ({ExceptionType}); answered 503")]
    private static partial void LogStoreUnavailable(ILogger logger, string exceptionType);

    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "Unhandled {ExceptionType} while serving a request")]
    private static partial void LogUnhandled(ILogger logger, string exceptionType, Exception exception);
}
