namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// What the access-token test classes share: an entry started per test, hand-built JWS headers and claims as entry
/// itself would issue them (each test changes one thing), and GET /v1/me with a given Authorization header.
/// </summary>
public abstract class AccessTokenTestBase : IAsyncLifetime
{
    protected static readonly byte[] Secret = Encoding.UTF8.GetBytes(TestStack.JwtSecret);
    /// <summary>entry (in-memory store) with the test signing key <see cref="TestStack.JwtKid"/>, started before each test.</summary>
    protected TestStack Stack { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Stack = await TestStack.StartAsync(StoreKind.InMemory);

    public async ValueTask DisposeAsync() => await Stack.DisposeAsync();

    protected static Dictionary<string, object?> Header(string alg = "HS256", string? kid = TestStack.JwtKid, string? typ = "at+jwt")
    {
        var header = new Dictionary<string, object?> { ["alg"] = alg };
        if (kid is not null)
        {
            header["kid"] = kid;
        }
        if (typ is not null)
        {
            header["typ"] = typ;
        }
        return header;
    }

    protected static Dictionary<string, object?> Claims(Guid? customer = null)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return new Dictionary<string, object?>
        {
            ["iss"] = "vpn-entry",
            ["aud"] = "vpn-api",
            ["sub"] = (customer ?? Guid.NewGuid()).ToString(),
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + 600,
            ["jti"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
        };
    }

    protected static Dictionary<string, object?> With(Dictionary<string, object?> claims, string name, object? value)
    {
        var copy = new Dictionary<string, object?>(claims);
        if (value is null)
        {
            copy.Remove(name);
        }
        else
        {
            copy[name] = value;
        }
        return copy;
    }

    protected async Task<JsonElement> MeAsync(string? authorization, int expectedStatus, string path = "/v1/me")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }
        return await Stack.SendJsonAsync(request, expectedStatus);
    }

    protected async Task AssertRejectedAsync(string token, string code = "invalid_token")
    {
        var problem = await MeAsync("Bearer " + token, 401);
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.DoesNotContain(token, problem.ToString(), StringComparison.Ordinal);
    }

    protected static byte[] Base64UrlDecode(string value)
    {
        var padded = value.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(padded.PadRight(padded.Length + ((4 - (padded.Length % 4)) % 4), '='));
    }
}
