using System.Net.Sockets;
using System.Security.Cryptography;

namespace Vpn.Cli.Client;

/// <summary>The code the provider redirected the browser back with, and what redeeming it at entry needs besides.</summary>
public sealed record SignInCode(string Code, string RedirectUri, string CodeVerifier, string Nonce);

/// <summary>
/// The authorization-code flow with PKCE on a loopback redirect (RFC 8252 §7.3, what Google's desktop clients use): a
/// listener on 127.0.0.1 at a port the kernel picks, the provider's authorization URL (from its discovery document)
/// with an S256 code challenge, a random state and nonce, opened in a browser; the browser comes back to
/// <c>http://127.0.0.1:&lt;port&gt;/callback</c> with the code. Entry redeems it (it holds the client secret).
/// </summary>
public static class LoopbackSignIn
{
    public const string CallbackPath = "/callback";

    public static async Task<SignInCode> AuthorizeAsync(HttpClient http, Uri issuer, string clientId, int port, Func<Uri, CancellationToken, Task> openBrowser,
        TimeSpan timeout, CancellationToken cancellationToken)
    {
        var authorizationEndpoint = await DiscoverAsync(http, issuer, cancellationToken);
        using var listener = new TcpListener(IPAddress.Loopback, port);
        try
        {
            listener.Start();
        }
        catch (SocketException e)
        {
            throw new CliException(ExitCodes.Usage, $"cannot listen on 127.0.0.1:{port} for the sign-in redirect: {e.SocketErrorCode}");
        }
        var redirectUri = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}{CallbackPath}";
        var state = Base64Url(RandomNumberGenerator.GetBytes(16));
        var nonce = Base64Url(RandomNumberGenerator.GetBytes(16));
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        var query = new Dictionary<string, string>
        {
            ["response_type"] = "code",
            ["client_id"] = clientId,
            ["redirect_uri"] = redirectUri,
            ["scope"] = "openid",
            ["state"] = state,
            ["nonce"] = nonce,
            ["code_challenge"] = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))),
            ["code_challenge_method"] = "S256",
        };
        var separator = authorizationEndpoint.Query.Length > 0 ? "&" : "?";
        var url = new Uri(authorizationEndpoint + separator + string.Join('&', query.Select(p => $"{p.Key}={Uri.EscapeDataString(p.Value)}")));

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var callback = WaitForCallbackAsync(listener, state, deadline.Token);
        await openBrowser(url, deadline.Token);
        Dictionary<string, string> parameters;
        try
        {
            parameters = await callback;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException(ExitCodes.Unauthorized, $"no sign-in came back to {redirectUri} within {timeout.TotalSeconds:0} s");
        }
        // Only a redirect carrying this sign-in's state gets here (WaitForCallbackAsync ignores the others), so an error
        // is the provider's, not another page's; its text is printed without control characters (no terminal escapes).
        if (parameters.TryGetValue("error", out var error))
        {
            parameters.TryGetValue("error_description", out var description);
            throw new CliException(ExitCodes.Unauthorized,
                $"the provider refused the sign-in: {Printable(error)}{(description is null ? "" : $" ({Printable(description)})")}");
        }
        // RFC 9207: a provider that names itself in the response must be the one asked (a mix-up defence).
        if (parameters.TryGetValue("iss", out var iss) && iss.TrimEnd('/') != issuer.AbsoluteUri.TrimEnd('/'))
        {
            throw new CliException(ExitCodes.Unauthorized, $"the sign-in redirect names the issuer {iss}, not {issuer}: refused");
        }
        return parameters.TryGetValue("code", out var code) && code.Length > 0
            ? new SignInCode(code, redirectUri, verifier, nonce)
            : throw new CliException(ExitCodes.Unauthorized, "the sign-in redirect carries no code");
    }

    private static async Task<Uri> DiscoverAsync(HttpClient http, Uri issuer, CancellationToken cancellationToken)
    {
        var discovery = new Uri(issuer.AbsoluteUri.TrimEnd('/') + "/.well-known/openid-configuration");
        try
        {
            using var response = await http.GetAsync(discovery, cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.IsSuccessStatusCode && JsonNode.Parse(text)?["authorization_endpoint"]?.GetValue<string>() is { } endpoint
                && Uri.TryCreate(endpoint, UriKind.Absolute, out var uri))
            {
                return uri;
            }
            throw new CliException(ExitCodes.Unavailable, $"{discovery} answered {(int)response.StatusCode} without an authorization_endpoint");
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or InvalidOperationException
            || e is TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new CliException(ExitCodes.Unavailable, $"cannot read the provider's discovery document {discovery}: {e.Message}");
        }
    }

    /// <summary>Serves the loopback port until a request for the callback path arrives; anything else (a favicon) gets a 404.</summary>
    private static async Task<Dictionary<string, string>> WaitForCallbackAsync(TcpListener listener, string state, CancellationToken cancellationToken)
    {
        while (true)
        {
            using var client = await listener.AcceptTcpClientAsync(cancellationToken);
            await using var stream = client.GetStream();
            var target = await ReadRequestTargetAsync(stream, cancellationToken);
            if (target is null || !(target == CallbackPath || target.StartsWith(CallbackPath + "?", StringComparison.Ordinal)))
            {
                await RespondAsync(stream, "404 Not Found", "Not the sign-in callback.", cancellationToken);
                continue;
            }
            var parameters = ParseQuery(target.Contains('?', StringComparison.Ordinal) ? target[(target.IndexOf('?', StringComparison.Ordinal) + 1)..] : "");
            // Any local page or process can reach this port: a redirect without this sign-in's state is not the
            // provider's answer to it, and neither ends nor aborts the wait.
            if (!parameters.TryGetValue("state", out var returned)
                || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(returned), Encoding.UTF8.GetBytes(state)))
            {
                await RespondAsync(stream, "400 Bad Request", "Not this sign-in's redirect (its state does not match).", cancellationToken);
                continue;
            }
            await RespondAsync(stream, "200 OK", parameters.ContainsKey("code")
                ? "Signed in. You can close this tab and go back to vpnctl."
                : "The sign-in did not succeed. vpnctl says why.", cancellationToken);
            return parameters;
        }
    }

    private static string Printable(string text) => new([.. text.Where(c => !char.IsControl(c)).Take(300)]);

    private static async Task<string?> ReadRequestTargetAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[8192];
        var length = 0;
        while (length < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                break;
            }
            length += read;
            if (Encoding.ASCII.GetString(buffer, 0, length).Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                break;
            }
        }
        var requestLine = Encoding.ASCII.GetString(buffer, 0, length).Split("\r\n", 2)[0].Split(' ');
        return requestLine.Length == 3 && requestLine[0] == "GET" ? requestLine[1] : null;
    }

    private static async Task RespondAsync(NetworkStream stream, string status, string message, CancellationToken cancellationToken)
    {
        var body = Encoding.UTF8.GetBytes($"<!doctype html><meta charset=\"utf-8\"><title>vpnctl</title><p>{WebUtility.HtmlEncode(message)}</p>\n");
        var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {body.Length}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n");
        await stream.WriteAsync(head, cancellationToken);
        await stream.WriteAsync(body, cancellationToken);
    }

    private static Dictionary<string, string> ParseQuery(string query)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var at = pair.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString((at < 0 ? pair : pair[..at]).Replace('+', ' '));
            result[name] = at < 0 ? "" : Uri.UnescapeDataString(pair[(at + 1)..].Replace('+', ' '));
        }
        return result;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
