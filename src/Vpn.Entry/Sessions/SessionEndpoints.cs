using Microsoft.AspNetCore.Http.HttpResults;
using Vpn.Entry.Auth;
using Vpn.Entry.Http;

namespace Vpn.Entry.Sessions;

public static class SessionEndpoints
{
    public static IEndpointRouteBuilder MapSessionEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/sessions").RequireCustomer().WithTags("Sessions");

        group.MapPost("/", async Task<Created<SessionView>> (StartSessionRequest request, HttpContext http, SessionService service, CancellationToken ct) =>
        {
            var session = await service.StartAsync(http.CustomerId(), request, ct);
            return TypedResults.Created("/v1/sessions/current", session);
        });

        group.MapGet("/current", async Task<Ok<SessionView>> (HttpContext http, SessionService service, CancellationToken ct) =>
            TypedResults.Ok(await service.GetCurrentAsync(http.CustomerId(), ct) ?? throw NoActiveSession()));

        group.MapDelete("/current", async Task<NoContent> (HttpContext http, SessionService service, CancellationToken ct) =>
            await service.TerminateCurrentAsync(http.CustomerId(), ct) ? TypedResults.NoContent() : throw NoActiveSession());

        return app;
    }

    private static ApiProblemException NoActiveSession() => ApiProblemException.NotFound(ErrorCodes.NoActiveSession, "There is no active session.");
}
