using System.Net;
using System.Web;

namespace Vpn.Cli.Tests.Client;

/// <summary>
/// The loopback redirect listener: any local page or process can reach its port, so only a redirect carrying this
/// sign-in's state ends the wait. A forged error or code without it is answered 400 and ignored; the provider's own
/// error (with the state) ends the sign-in, its text printed without control characters.
/// </summary>
public sealed class LoopbackSignInTests
{
    private static readonly Uri Issuer = new("https://issuer.test/");

    [Fact]
    public async Task Callback_ForgedWithoutState_IgnoredUntilTheProvidersOwn()
    {
        using var discovery = new HttpClient(new DiscoveryHandler());
        using var callbacks = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var seen = new List<HttpStatusCode>();

        var signIn = LoopbackSignIn.AuthorizeAsync(discovery, Issuer, "client", 0, async (url, ct) =>
        {
            var query = HttpUtility.ParseQueryString(url.Query);
            var redirect = query["redirect_uri"]!;
            foreach (var forged in new[] { "?error=access_denied&error_description=%1B%5B31mpwned", "?code=forged&state=wrong", "X?code=c&state=" + query["state"] })
            {
                using var answer = await callbacks.GetAsync(new Uri(redirect + forged), ct);
                seen.Add(answer.StatusCode);
            }
            using var own = await callbacks.GetAsync(new Uri($"{redirect}?error=access_denied&error_description=%1B%5B31mno&state={query["state"]}"), ct);
            seen.Add(own.StatusCode);
        }, TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        var refused = await Assert.ThrowsAsync<CliException>(() => signIn);
        Assert.Equal([HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.NotFound, HttpStatusCode.OK], seen);
        Assert.Equal(ExitCodes.Unauthorized, refused.ExitCode);
        Assert.Contains("access_denied", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', refused.Message);
        Assert.DoesNotContain("pwned", refused.Message, StringComparison.Ordinal);
    }

    private sealed class DiscoveryHandler : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StringContent("""{"authorization_endpoint":"https://issuer.test/auth"}""", System.Text.Encoding.UTF8, "application/json"),
            });
    }
}
