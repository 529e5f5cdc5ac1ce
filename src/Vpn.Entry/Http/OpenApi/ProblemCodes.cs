namespace Vpn.Entry.Http.OpenApi;

/// <summary>
/// Endpoint metadata: the problem codes an endpoint answers with one status. The OpenAPI document lists them on that
/// response (the problem schema's <c>code</c> as an enum), and the tests check that no endpoint answers a problem it
/// does not declare. Problems every endpoint of a kind can answer (authentication, body limits, a store outage) come
/// from <see cref="ImplicitProblems"/> and need no declaration.
/// </summary>
public sealed record ProblemCodes(int Status, IReadOnlyList<string> Codes);

public static class ProblemCodesExtensions
{
    /// <summary>Declares that this endpoint answers <paramref name="status"/> with one of <paramref name="codes"/>.</summary>
    public static TBuilder ProducesProblems<TBuilder>(this TBuilder builder, int status, params string[] codes)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (codes.Length == 0)
        {
            throw new ArgumentException("Name at least one problem code.", nameof(codes));
        }
        return builder.WithMetadata(new ProblemCodes(status, codes));
    }

    /// <summary>
    /// The problems an endpoint can answer, merged by status: what its metadata declares, what its operation in
    /// <see cref="EntryOperations"/> lists, and what its kind implies.
    /// </summary>
    public static IReadOnlyDictionary<int, SortedSet<string>> ProblemsOf(IReadOnlyList<object> metadata, string method, string route)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var problems = new SortedDictionary<int, SortedSet<string>>();
        var declared = metadata.OfType<ProblemCodes>().Concat(EntryOperations.Find(method, route)?.Problems ?? []).Select(p => (p.Status, p.Codes));
        foreach (var (status, codes) in declared.Concat(ImplicitProblems.For(metadata, EntryOperations.NormalizeRoute(route))))
        {
            if (!problems.TryGetValue(status, out var set))
            {
                problems[status] = set = new SortedSet<string>(StringComparer.Ordinal);
            }
            set.UnionWith(codes);
        }
        return problems;
    }
}

/// <summary>The problems an endpoint answers because of what it is, not what it does (docs/api-v1.md, Conventions).</summary>
public static class ImplicitProblems
{
    public static IEnumerable<(int Status, IReadOnlyList<string> Codes)> For(IReadOnlyList<object> metadata, string route)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(route);
        if (metadata.OfType<Auth.RequiresAdmin>().Any())
        {
            // A wrong token, and the per-address budget for wrong tokens.
            yield return (StatusCodes.Status401Unauthorized, [ErrorCodes.Unauthorized]);
            yield return (StatusCodes.Status429TooManyRequests, [ErrorCodes.RateLimited]);
        }
        if (metadata.OfType<Auth.RequiresCustomer>().Any())
        {
            yield return (StatusCodes.Status401Unauthorized,
                [ErrorCodes.MissingToken, ErrorCodes.InvalidToken, ErrorCodes.TokenExpired, ErrorCodes.TokenRevoked]);
            yield return (StatusCodes.Status503ServiceUnavailable, [ErrorCodes.RevocationUnavailable]);
        }
        if (metadata.OfType<Microsoft.AspNetCore.Http.Metadata.IAcceptsMetadata>().Any())
        {
            // Malformed JSON, wrong types, a repeated property, a missing required field; a body over 64 KiB.
            yield return (StatusCodes.Status400BadRequest, [ErrorCodes.InvalidRequest]);
            yield return (StatusCodes.Status413PayloadTooLarge, [ErrorCodes.InvalidRequest]);
        }
        if (metadata.OfType<Microsoft.AspNetCore.RateLimiting.EnableRateLimitingAttribute>().Any())
        {
            yield return (StatusCodes.Status429TooManyRequests, [ErrorCodes.RateLimited]);
        }
        if (route.StartsWith("/v1/", StringComparison.Ordinal))
        {
            yield return (StatusCodes.Status503ServiceUnavailable, [ErrorCodes.StoreUnavailable]);
        }
    }
}

/// <summary>Endpoint metadata: the endpoint takes the optional Idempotency-Key header (listed in OpenAPI).</summary>
public sealed class IdempotencyKeyHeader
{
    public const string Name = "Idempotency-Key";
    public const int MaxLength = 255;

    public static IdempotencyKeyHeader Instance { get; } = new();

    private IdempotencyKeyHeader()
    {
    }
}
