using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Vpn.Harness;

namespace Vpn.TestSupport.Oidc;

/// <summary>
/// A real OpenID Connect provider (the npm package oidc-provider, run by node from tests/oidc-provider) on a loopback
/// port, with a scripted, non-interactive login and test controls to tamper with ID tokens, break the token endpoint
/// and rotate the signing key. The node process is killed on dispose.
/// </summary>
/// <remarks>
/// Needs node (20.12 or later) and the fixture's packages (<c>npm ci --prefix tests/oidc-provider</c>, done by
/// .ci/run): without them a test skips on a developer machine and fails under CI.
/// </remarks>
public sealed partial class OidcProvider : IAsyncDisposable
{
    public const string DefaultClientId = "vpn-app";
    public const string DefaultClientSecret = "vpn-app-secret";
    public const string DefaultOtherClientId = "other-app";
    public const string DefaultOtherClientSecret = "other-app-secret";
    public const string DefaultRedirectUri = "https://app.example/cb";

    /// <summary>A native client (application_type native): its redirect http://127.0.0.1/callback matches on any port (RFC 8252 §7.3).</summary>
    public const string NativeClientId = "vpn-native";
    public const string NativeClientSecret = "vpn-native-secret";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly Lazy<Task<string?>> s_nodeProblem = new(FindNodeProblemAsync);

    private readonly string _node;
    private readonly string _directory;
    private readonly OidcProviderOptions _options;
    private readonly HttpClient _control;
    // Null between StopAsync and RestartAsync.
    private BackgroundProcess? _process;
    private string _lastOutput = "";
    // The private signing key as last read from the process: what a restart after a stop signs with again.
    private JsonElement? _lastSigningKey;

    private OidcProvider(string node, string directory, OidcProviderOptions options, BackgroundProcess process, string issuer)
    {
        _node = node;
        _directory = directory;
        _options = options;
        _process = process;
        Issuer = issuer;
        // The control client never reuses connections to a process that a restart replaced, and never waits long.
        _control = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero }) { Timeout = TimeSpan.FromSeconds(15) };
    }

    /// <summary><c>http://127.0.0.1:&lt;port&gt;</c>, without a trailing slash (the <c>iss</c> of its ID tokens).</summary>
    public string Issuer { get; }

    public Uri DiscoveryUri => new($"{Issuer}/.well-known/openid-configuration");

    /// <summary>Fixed by oidc-provider's route configuration; the discovery document names the same URLs.</summary>
    public Uri AuthorizationEndpoint => new($"{Issuer}/auth");

    public Uri TokenEndpoint => new($"{Issuer}/token");

    public Uri JwksUri => new($"{Issuer}/jwks");

    public string ClientId => DefaultClientId;

    public string ClientSecret => DefaultClientSecret;

    /// <summary>A second confidential client with the same redirect URI: its codes and tokens are not for <see cref="ClientId"/>.</summary>
    public string OtherClientId => DefaultOtherClientId;

    public string OtherClientSecret => DefaultOtherClientSecret;

    public string RedirectUri => DefaultRedirectUri;

    /// <summary>The node process's stdout and stderr so far, for failure messages.</summary>
    public string Output => _process?.Output ?? _lastOutput;

    /// <summary>
    /// The scripted login of <paramref name="subject"/> (sent as login_hint; it becomes the ID token's <c>sub</c>): an
    /// authorization request, the fixture's interaction (login and consent without a page), then the redirect to
    /// <see cref="RedirectUri"/>, whose <c>code</c> is returned after its <c>state</c> and <c>iss</c> were checked.
    /// </summary>
    /// <param name="nonce">Sent as is when given; none is sent otherwise.</param>
    /// <param name="pkce">Send an S256 code_challenge (the verifier is returned).</param>
    /// <param name="clientId"><see cref="ClientId"/> by default; e.g. <see cref="OtherClientId"/> for a code of another client.</param>
    public async Task<AuthorizationCode> AuthorizeAsync(string subject = "alice", string? nonce = null, bool pkce = true, string? clientId = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(subject);
        clientId ??= ClientId;
        var state = Base64Url(RandomNumberGenerator.GetBytes(16));
        string? verifier = null;
        var query = new List<KeyValuePair<string, string>>
        {
            new("client_id", clientId),
            new("redirect_uri", RedirectUri),
            new("response_type", "code"),
            new("scope", "openid"),
            new("state", state),
            new("login_hint", subject),
        };
        if (nonce is not null)
        {
            query.Add(new("nonce", nonce));
        }
        if (pkce)
        {
            verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
            query.Add(new("code_challenge", Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)))));
            query.Add(new("code_challenge_method", "S256"));
        }

        // A browser of its own per login: cookies carry the interaction from /auth to /interaction and back.
        using var browser = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = true,
            CookieContainer = new CookieContainer(),
        })
        { Timeout = TimeSpan.FromSeconds(15) };
        var location = new Uri($"{AuthorizationEndpoint}?{string.Join('&', query.Select(p => $"{p.Key}={Uri.EscapeDataString(p.Value)}"))}");
        for (var hop = 0; hop < 10; hop++)
        {
            using var response = await browser.GetAsync(location, cancellationToken);
            var status = (int)response.StatusCode;
            if (status is < 300 or > 399 || response.Headers.Location is null)
            {
                var body = await response.Content.ReadAsStringAsync(cancellationToken);
                throw new InvalidOperationException($"Scripted login stopped at {location} with {status}: {body}");
            }
            var next = response.Headers.Location.IsAbsoluteUri ? response.Headers.Location : new Uri(location, response.Headers.Location);
            if (next.AbsoluteUri.StartsWith(RedirectUri, StringComparison.Ordinal))
            {
                return ReadCallback(next, clientId, state, verifier, nonce);
            }
            location = next;
        }
        throw new InvalidOperationException($"Scripted login did not reach {RedirectUri} within 10 redirects (last {location}).");
    }

    /// <summary>
    /// From now until <see cref="ResetAsync"/>, every successful token response carries a changed ID token: the real
    /// one decoded, <paramref name="claims"/> and <paramref name="header"/> applied (a null value removes the member),
    /// then signed as <paramref name="signing"/> says.
    /// </summary>
    public async Task TamperAsync(IReadOnlyDictionary<string, object?>? claims = null, IReadOnlyDictionary<string, object?>? header = null,
        IdTokenSigning signing = IdTokenSigning.Provider, CancellationToken cancellationToken = default)
    {
        var sign = signing switch
        {
            IdTokenSigning.Provider => "provider",
            IdTokenSigning.Foreign => "foreign",
            IdTokenSigning.None => "none",
            IdTokenSigning.ClientSecret => "client_secret",
            _ => throw new ArgumentOutOfRangeException(nameof(signing)),
        };
        await ControlAsync(HttpMethod.Post, "tamper", new Dictionary<string, object?>
        {
            ["claims"] = claims ?? new Dictionary<string, object?>(),
            ["header"] = header ?? new Dictionary<string, object?>(),
            ["sign"] = sign,
        }, cancellationToken);
    }

    /// <summary>No tampering, token endpoint normal, held requests released; the signing key and counters stay.</summary>
    public Task ResetAsync(CancellationToken cancellationToken = default) =>
        ControlAsync(HttpMethod.Post, "reset", null, cancellationToken);

    public Task SetTokenEndpointAsync(TokenEndpointMode mode, CancellationToken cancellationToken = default) =>
        ControlAsync(HttpMethod.Post, "token-endpoint", new Dictionary<string, object?>
        {
            ["mode"] = mode switch
            {
                TokenEndpointMode.Normal => "normal",
                TokenEndpointMode.Down => "down",
                TokenEndpointMode.Hang => "hang",
                _ => throw new ArgumentOutOfRangeException(nameof(mode)),
            },
        }, cancellationToken);

    /// <summary>
    /// A fresh RSA signing key with a new kid. The old key leaves the JWKS at once unless <paramref name="keepPrevious"/>
    /// (then it stays published but no longer signs). Codes issued before remain redeemable; their ID tokens are signed
    /// with the new key. Returns the new kid.
    /// </summary>
    public async Task<string> RotateKeysAsync(bool keepPrevious = false, CancellationToken cancellationToken = default)
    {
        await ControlAsync(HttpMethod.Post, "rotate-keys", new Dictionary<string, object?> { ["keep_previous"] = keepPrevious }, cancellationToken);
        // Read back through the state so the remembered signing key follows the rotation.
        return await CurrentKidAsync(cancellationToken);
    }

    /// <summary>The kid that signs ID tokens now.</summary>
    public async Task<string> CurrentKidAsync(CancellationToken cancellationToken = default) =>
        (await ControlAsync(HttpMethod.Get, "state", null, cancellationToken)).GetProperty("kid").GetString()!;

    public async Task<OidcProviderStats> StatsAsync(CancellationToken cancellationToken = default)
    {
        var answer = await ControlAsync(HttpMethod.Get, "stats", null, cancellationToken);
        return answer.Deserialize<OidcProviderStats>()!;
    }

    private async Task<JsonElement> ControlAsync(HttpMethod method, string name, object? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, $"{Issuer}/__test/{name}");
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        using var response = await _control.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"OIDC fixture control {name} answered {(int)response.StatusCode}: {text}");
        }
        var answer = JsonDocument.Parse(text).RootElement.Clone();
        if (answer.TryGetProperty("signing_key", out var key))
        {
            _lastSigningKey = key.Clone();
        }
        return answer;
    }

    private AuthorizationCode ReadCallback(Uri callback, string clientId, string state, string? verifier, string? nonce)
    {
        var parameters = ParseQuery(callback.Query);
        if (parameters.TryGetValue("error", out var error))
        {
            parameters.TryGetValue("error_description", out var description);
            throw new InvalidOperationException($"The provider refused the authorization request: {error} ({description}).");
        }
        if (!parameters.TryGetValue("state", out var returnedState) || returnedState != state)
        {
            throw new InvalidOperationException($"The callback's state does not match the request's: {callback}");
        }
        // RFC 9207: oidc-provider names itself in the authorization response.
        if (parameters.TryGetValue("iss", out var iss) && iss != Issuer)
        {
            throw new InvalidOperationException($"The callback's iss {iss} is not {Issuer}.");
        }
        if (!parameters.TryGetValue("code", out var code) || string.IsNullOrEmpty(code))
        {
            throw new InvalidOperationException($"The callback carries no code: {callback}");
        }
        return new AuthorizationCode(code, verifier, nonce, clientId, RedirectUri, state);
    }

    private static Dictionary<string, string> ParseQuery(string query)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var at = pair.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString((at < 0 ? pair : pair[..at]).Replace('+', ' '));
            var value = at < 0 ? "" : Uri.UnescapeDataString(pair[(at + 1)..].Replace('+', ' '));
            result[name] = value;
        }
        return result;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
