using System.Collections.Concurrent;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Vpn.Entry.Http.OpenApi;

namespace Vpn.Entry.Tests.Infrastructure;

/// <summary>
/// Keeps the OpenAPI document honest: every problem an endpoint of a <see cref="TestStack"/> answers must be one its
/// operation declares (the codes the document lists on that status, <see cref="ProblemCodesExtensions.ProblemsOf"/>).
/// Registered as the first problem-details writer, it looks at each problem on its way out and lets the real writer
/// write it; <see cref="TestStack.DisposeAsync"/> fails the test naming every undeclared (operation, status, code).
/// Problems of no endpoint (an unknown path, 405) are not an operation's and are not checked.
/// </summary>
public sealed class ProblemContractCheck : IProblemDetailsWriter
{
    private readonly ConcurrentDictionary<string, byte> _undeclared = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> Undeclared => [.. _undeclared.Keys];

    public bool CanWrite(ProblemDetailsContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var http = context.HttpContext;
        if ((http.GetEndpoint() ?? http.Features.Get<IExceptionHandlerFeature>()?.Endpoint) is RouteEndpoint endpoint)
        {
            var status = context.ProblemDetails.Status ?? http.Response.StatusCode;
            var code = context.ProblemDetails.Extensions.TryGetValue("code", out var value) ? value as string : null;
            var route = endpoint.RoutePattern.RawText ?? "";
            var declared = ProblemCodesExtensions.ProblemsOf([.. endpoint.Metadata], http.Request.Method, route);
            if (code is null || !declared.TryGetValue(status, out var codes) || !codes.Contains(code))
            {
                _undeclared.TryAdd($"{http.Request.Method} {EntryOperations.NormalizeRoute(route)} → {status} {code ?? "(no code)"}", 0);
            }
        }
        return false;
    }

    public ValueTask WriteAsync(ProblemDetailsContext context) => throw new InvalidOperationException("Never asked: CanWrite is false.");

    /// <summary>Throws (failing the test) when an endpoint answered a problem its OpenAPI operation does not declare.</summary>
    public void Verify()
    {
        var undeclared = Undeclared;
        if (undeclared.Count > 0)
        {
            throw new Xunit.Sdk.XunitException(
                $"{undeclared.Count} problem answer(s) not declared in the OpenAPI document (EntryOperations, ProducesProblems or ImplicitProblems):\n  "
                + string.Join("\n  ", undeclared.Order(StringComparer.Ordinal)));
        }
    }
}
