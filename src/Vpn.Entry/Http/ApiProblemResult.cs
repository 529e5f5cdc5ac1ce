using System.Reflection;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc;

namespace Vpn.Entry.Http;

/// <summary>A contract error as data: what <see cref="ApiProblemException"/> carries, for code that answers instead of throwing.</summary>
public sealed record ApiProblem(int Status, string Code, string Detail, IReadOnlyDictionary<string, object?>? Extensions = null)
{
    public ApiProblemException ToException() => new(Status, Code, Detail, Extensions);
}

/// <summary>The problems one endpoint answers, as a type: <see cref="ApiProblemResult{TStatuses}"/> lists them in OpenAPI.</summary>
public interface IProblemStatuses
{
    static abstract IReadOnlyList<OpenApi.ProblemCodes> Problems { get; }
}

/// <summary>
/// A problem+json answer as a typed result, so a <c>Results&lt;Ok&lt;T&gt;, ApiProblemResult&lt;S&gt;&gt;</c> handler tells OpenAPI
/// every error response it has. Written byte for byte as a thrown <see cref="ApiProblemException"/> is: the same
/// <see cref="ProblemExceptionHandler.Create"/> body through the problem-details writer, and the no-cache headers the
/// exception-handler middleware adds; a client that accepts no JSON gets the status alone, as it does there.
/// </summary>
public sealed class ApiProblemResult<TStatuses>(ApiProblem problem) : IResult, IEndpointMetadataProvider, IStatusCodeHttpResult
    where TStatuses : IProblemStatuses
{
    public ApiProblem Problem { get; } = problem ?? throw new ArgumentNullException(nameof(problem));

    int? IStatusCodeHttpResult.StatusCode => Problem.Status;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        var response = httpContext.Response;
        response.StatusCode = Problem.Status;
        response.Headers.CacheControl = "no-cache,no-store";
        response.Headers.Pragma = "no-cache";
        response.Headers.Expires = "-1";
        var written = await httpContext.RequestServices.GetRequiredService<IProblemDetailsService>().TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = ProblemExceptionHandler.Create(Problem.Status, Problem.Code, Problem.Detail, Problem.Extensions),
        });
        if (!written && httpContext.Features.Get<IStatusCodePagesFeature>() is { } statusCodePages)
        {
            // As for a thrown problem (handled outside UseStatusCodePages): the status alone, no text page.
            statusCodePages.Enabled = false;
        }
    }

    static void IEndpointMetadataProvider.PopulateMetadata(MethodInfo method, EndpointBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        foreach (var problem in TStatuses.Problems)
        {
            builder.Metadata.Add(problem);
            builder.Metadata.Add(new ProducesResponseTypeMetadata(problem.Status, typeof(ProblemDetails), ["application/problem+json"]));
        }
    }
}
