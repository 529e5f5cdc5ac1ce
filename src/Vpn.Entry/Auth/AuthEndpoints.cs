using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.HttpResults;
using Vpn.Entry.Audit;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Auth;

public sealed record OAuthCallbackRequest([property: Required] string? Code, [property: Required] string? RedirectUri, string? CodeVerifier, string? Nonce);

public sealed record SignInResponse(string AccessToken, string TokenType, int ExpiresIn, Guid CustomerId, bool NewCustomer);

public sealed record MeSubscription(string PlanCode, string Status, int MaxDevices, IReadOnlyList<string> AllowedRegions);

/// <summary>Usage is the current billing period's data use (limit_bytes null: unlimited); present with or without a subscription.</summary>
public sealed record MeResponse(Guid CustomerId, MeSubscription? Subscription, Usage.UsageView Usage);

public static class AuthEndpoints
{
    public const string SignInRateLimit = "sign-in";

    public static IEndpointRouteBuilder MapAuthEndpoints(this IEndpointRouteBuilder app)
    {
        var auth = app.MapGroup("/v1/auth").WithTags("Auth");

        auth.MapPost("/oauth/google/callback", async Task<Ok<SignInResponse>> (OAuthCallbackRequest request, OidcSignIn oidc,
            IIdentityStore identities, AccessTokenService tokens, ITokenRevocations revocations, IAuditLog audit, EntryOptions options, TimeProvider time,
            CancellationToken ct) =>
        {
            var code = Validation.RequireText(request.Code, "code", 2048);
            var redirectUri = Validation.RequireText(request.RedirectUri, "redirect_uri", 2048);
            if (!Uri.TryCreate(redirectUri, UriKind.Absolute, out _))
            {
                throw ApiProblemException.BadRequest("redirect_uri must be an absolute URI.");
            }
            // RFC 7636 §4.1: 43-128 characters of [A-Za-z0-9-._~].
            if (request.CodeVerifier is { } verifier && (verifier.Length is < 43 or > 128
                || !verifier.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~')))
            {
                throw ApiProblemException.BadRequest("code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636).");
            }
            var nonce = request.Nonce is null ? null : Validation.RequireText(request.Nonce, "nonce", 512);
            if (options.Oidc.RequirePkce && request.CodeVerifier is null)
            {
                throw ApiProblemException.BadRequest("code_verifier is required: sign-in uses PKCE (RFC 7636).");
            }
            if (options.Oidc.AllowedRedirectUris.Count > 0 && !options.Oidc.AllowedRedirectUris.Contains(redirectUri, StringComparer.Ordinal))
            {
                throw ApiProblemException.BadRequest("redirect_uri is not one of this service's registered redirect URIs.");
            }
            var identity = await oidc.ExchangeAsync(code, redirectUri, request.CodeVerifier, nonce, ct);
            var customer = await identities.FindOrCreateAsync(identity.Issuer, identity.Subject, ct);
            await AfterLogoutAllSecondAsync(customer.CustomerId, revocations, time, ct);
            var token = tokens.Issue(customer.CustomerId);
            await audit.WriteAsync(new AuditEvent(time.GetUtcNow(), "customer", "auth.sign_in", customer.CustomerId.ToString(),
                new Dictionary<string, string?> { ["new_customer"] = customer.Created ? "true" : "false" }), ct);
            return TypedResults.Ok(new SignInResponse(token.Token, "Bearer", (int)tokens.Lifetime.TotalSeconds, customer.CustomerId, customer.Created));
        }).RequireRateLimiting(SignInRateLimit);

        auth.MapPost("/logout", async Task<NoContent> (HttpContext http, ITokenRevocations revocations, IAuditLog audit, TimeProvider time, CancellationToken ct) =>
        {
            var token = http.AccessToken()
                ?? throw ApiProblemException.Unauthorized(ErrorCodes.MissingToken, "Logout revokes a bearer token; none was presented.");
            await revocations.RevokeAsync(token.Jti, token.ExpiresAt, ct);
            await audit.WriteAsync(new AuditEvent(time.GetUtcNow(), "customer", "auth.logout", token.CustomerId.ToString(),
                new Dictionary<string, string?>()), ct);
            return TypedResults.NoContent();
        }).RequireCustomer();

        // "Sign out everywhere": every token of the customer issued until now is revoked on every replica, and its
        // active session ends (peer removed). Revoke first: a session started meanwhile by another of its tokens is
        // still ended below, and no new one can start once the revocation has reached every replica (<= 1 s).
        auth.MapPost("/logout-all", async Task<NoContent> (HttpContext http, ITokenRevocations revocations, SessionService sessions, IAuditLog audit,
            EntryOptions options, TimeProvider time, CancellationToken ct) =>
        {
            var token = http.AccessToken()
                ?? throw ApiProblemException.Unauthorized(ErrorCodes.MissingToken, "Logout revokes bearer tokens; none was presented.");
            await revocations.RevokeCustomerAsync(CustomerRevocation.Create(token.CustomerId, time.GetUtcNow(), erased: false, options.AccessTokens), ct);
            var ended = await sessions.TerminateCurrentAsync(token.CustomerId, CancellationToken.None);
            await audit.WriteAsync(new AuditEvent(time.GetUtcNow(), "customer", "auth.logout_all", token.CustomerId.ToString(),
                new Dictionary<string, string?> { ["session_ended"] = ended ? "true" : "false" }), CancellationToken.None);
            return TypedResults.NoContent();
        }).RequireCustomer();

        app.MapGet("/v1/me", async Task<Ok<MeResponse>> (HttpContext http, IPlanStore plans, Usage.IUsageStore usage, TimeProvider time,
            CancellationToken ct) =>
        {
            var customerId = http.CustomerId();
            var subscription = await plans.GetSubscriptionAsync(customerId, ct);
            var used = await usage.GetAsync(customerId, time.GetUtcNow(), ct);
            return TypedResults.Ok(new MeResponse(customerId, subscription is null ? null
                : new MeSubscription(subscription.PlanCode, subscription.Status, subscription.MaxDevices, subscription.AllowedRegions),
                Usage.UsageView.From(used)));
        }).RequireCustomer().WithTags("Auth");

        return app;
    }

    /// <summary>
    /// iat is whole seconds, and a logout-all revokes every token with iat at or before its moment: a token issued in
    /// the same second just after it would be born revoked. Sign-in then waits for the next second (at most one).
    /// </summary>
    private static async Task AfterLogoutAllSecondAsync(Guid customerId, ITokenRevocations revocations, TimeProvider time, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var second = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds());
        if (await revocations.IsCustomerRevokedAsync(customerId, second, ct))
        {
            await Task.Delay(second.AddSeconds(1) - now + TimeSpan.FromMilliseconds(1), time, ct);
        }
    }
}
