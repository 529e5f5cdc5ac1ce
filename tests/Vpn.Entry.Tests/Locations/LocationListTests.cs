using System.Net.Http.Headers;
using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Contracts.Http;
using Vpn.Entry.Locations;

namespace Vpn.Entry.Tests.Locations;

/// <summary>
/// GET /v1/locations: a list an app can trust and render. Signed with the operator's Ed25519 key and verified as a
/// client does (SignedLocations.Verify over the bytes received); a tampered, re-keyed, truncated or expired list is
/// refused; it names locations, load buckets and availability, never a node's address or key; it is cacheable.
/// </summary>
public sealed class LocationListTests : IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly CatalogSigningKey _key = new();
    private readonly string _keyFile = Path.Combine(Path.GetTempPath(), $"catalog-{Guid.NewGuid():N}.pem");

    public LocationListTests() => File.WriteAllText(_keyFile, _key.Pem);

    private Dictionary<string, byte[]> Trusted => new() { [SignedLocations.KeyId(_key.PublicKey)] = _key.PublicKey };

    public void Dispose() => File.Delete(_keyFile);

    [Theory]
    [InlineData(StoreKind.InMemory)]
    [InlineData(StoreKind.Postgres)]
    public async Task Locations_SignedByTheConfiguredKey_LocationsLoadAndAvailabilityOnly(StoreKind store)
    {
        await using var stack = await StartAsync(store);
        var open = await stack.RegisterNodeAsync("fra-1", "eu-west", capacity: 10);
        var down = await stack.RegisterNodeAsync("nyc-1", "us-east", capacity: 10);
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = down, healthy = false, active_peer_count = 0 }), 204);

        using var response = await stack.Client.GetAsync(new Uri("/v1/locations", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsByteArrayAsync(Ct);

        var verified = SignedLocations.Verify(body, Trusted, DateTimeOffset.UtcNow, TimeSpan.FromSeconds(30));
        Assert.Equal(LocationsVerdict.Valid, verified.Verdict);
        var payload = verified.Payload!;
        Assert.Equal(TimeSpan.FromHours(1), payload.ExpiresAt - payload.IssuedAt);
        Assert.Equal(
            [new LocationEntry("eu-west", "DE", "fra", "default", "low", true), new LocationEntry("us-east", "DE", "fra", "default", "full", false)],
            payload.Locations);
        var text = Encoding.UTF8.GetString(body);
        foreach (var secret in new[] { "203.0.113.7", "51820", TestStack.DefaultCoreEndpoint, open.ToString(), "public_key", "capacity" })
        {
            Assert.DoesNotContain(secret, text, StringComparison.OrdinalIgnoreCase);
        }
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("public", response.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Locations_TamperedRekeyedTruncatedExpiredOrEarly_Refused()
    {
        await using var stack = await StartAsync(StoreKind.InMemory);
        await stack.RegisterNodeAsync("fra-1", "eu-west", capacity: 10);
        var body = await stack.Client.GetByteArrayAsync(new Uri("/v1/locations", UriKind.Relative), Ct);
        var now = DateTimeOffset.UtcNow;
        var skew = TimeSpan.FromSeconds(30);
        var payload = SignedLocations.Verify(body, Trusted, now, skew).Payload!;
        var text = Encoding.UTF8.GetString(body);

        Assert.Equal(LocationsVerdict.BadSignature, Verify(text.Replace("\"low\"", "\"high\"", StringComparison.Ordinal), now));
        Assert.Equal(LocationsVerdict.BadSignature, Verify(text.Replace("\"available\":true", "\"available\":false", StringComparison.Ordinal), now));
        // Another key under the same id (a client pinned the wrong key, or a forger reused the id): the signature fails.
        Assert.Equal(LocationsVerdict.BadSignature, SignedLocations.Verify(body, new Dictionary<string, byte[]>
        {
            [payload.KeyId] = new CatalogSigningKey().PublicKey,
        }, now, skew).Verdict);
        Assert.Equal(LocationsVerdict.UnknownKey, SignedLocations.Verify(body, new Dictionary<string, byte[]>(), now, skew).Verdict);
        Assert.Equal(LocationsVerdict.Malformed, Verify(text[..^10], now));
        Assert.Equal(LocationsVerdict.Malformed, Verify(text.Replace(",\"signature\":\"", ",\"sig\":\"", StringComparison.Ordinal), now));
        Assert.Equal(LocationsVerdict.Malformed, Verify(text[..^2] + "\",\"extra\":1}", now));
        Assert.Equal(LocationsVerdict.Expired, Verify(text, payload.ExpiresAt + skew));
        Assert.Equal(LocationsVerdict.NotYetValid, Verify(text, payload.IssuedAt - skew - TimeSpan.FromSeconds(1)));
        Assert.Equal(LocationsVerdict.Valid, Verify(text, payload.ExpiresAt - TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task Locations_SameListWithinTheCachePeriod_IfNoneMatchAnswers304()
    {
        await using var stack = await StartAsync(StoreKind.InMemory);
        await stack.RegisterNodeAsync("fra-1", "eu-west", capacity: 10);

        using var first = await stack.Client.GetAsync(new Uri("/v1/locations", UriKind.Relative), Ct);
        using var second = await stack.Client.GetAsync(new Uri("/v1/locations", UriKind.Relative), Ct);
        var etag = first.Headers.ETag;
        Assert.NotNull(etag);
        Assert.Equal(etag, second.Headers.ETag);
        Assert.Equal(await first.Content.ReadAsByteArrayAsync(Ct), await second.Content.ReadAsByteArrayAsync(Ct));

        using var conditional = new HttpRequestMessage(HttpMethod.Get, "/v1/locations");
        conditional.Headers.IfNoneMatch.Add(new EntityTagHeaderValue(etag.Tag));
        using var notModified = await stack.Client.SendAsync(conditional, Ct);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync(Ct));
        using var other = new HttpRequestMessage(HttpMethod.Get, "/v1/locations");
        other.Headers.IfNoneMatch.Add(new EntityTagHeaderValue("\"not-it\""));
        using var changed = await stack.Client.SendAsync(other, Ct);
        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
    }

    [Fact]
    public async Task Production_WithoutKey_ServesNoList_AndABadKeyIsASettingsProblemWithoutItsContent()
    {
        var development = OptionsLoading.Load(EntryOptions.Load, [("APP_ENV", "development")]).Options;
        // Production's other settings are missing here too; only the absent signing key matters to the catalog.
        var production = OptionsLoading.Load(EntryOptions.Load, [("APP_ENV", "production")]).Options;
        using var catalog = new LocationCatalog(new StubDirectory(), production, TimeProvider.System,
            NullLogger<LocationCatalog>.Instance);
        Assert.Null(catalog.SigningKey);
        Assert.Null(await catalog.GetAsync(Ct));
        using var developmentCatalog = new LocationCatalog(new StubDirectory(), development, TimeProvider.System, NullLogger<LocationCatalog>.Instance);
        Assert.NotNull(developmentCatalog.SigningKey);

        var notAKey = "-----BEGIN PRIVATE KEY-----\nTUlJQ1NFQ1JFVC1LRVktTUFURVJJQUw=\n-----END PRIVATE KEY-----";
        var (_, errors) = OptionsLoading.Load(EntryOptions.Load, [("APP_CATALOG_SIGNING_KEY", notAKey)]);
        var error = Assert.Single(errors, e => e.Contains("APP_CATALOG_SIGNING_KEY", StringComparison.Ordinal));
        Assert.DoesNotContain("TUlJQ1NF", error, StringComparison.Ordinal);
        var (loaded, none) = OptionsLoading.Load(EntryOptions.Load, [("APP_CATALOG_SIGNING_KEY_FILE", _keyFile)]);
        Assert.Empty(none);
        Assert.Equal(_key.PublicKey, loaded.Locations.SigningKey!.GeneratePublicKey().GetEncoded());
    }

    private LocationsVerdict Verify(string body, DateTimeOffset now) =>
        SignedLocations.Verify(Encoding.UTF8.GetBytes(body), Trusted, now, TimeSpan.FromSeconds(30)).Verdict;

    private Task<TestStack> StartAsync(StoreKind store) =>
        TestStack.StartAsync(store, new Dictionary<string, string?> { ["APP_CATALOG_SIGNING_KEY_FILE"] = _keyFile });

    private sealed class StubDirectory : INodeDirectory
    {
        private static readonly NodeDirectorySnapshot Empty = new([], 0);

        public ValueTask<NodeDirectorySnapshot> GetAsync(CancellationToken cancellationToken) => ValueTask.FromResult(Empty);

        public Task<NodeDirectorySnapshot> ReloadAsync(CancellationToken cancellationToken) => Task.FromResult(Empty);

        public void MarkChanged()
        {
        }

        public void ObserveLoad(Guid nodeId, int liveSessions)
        {
        }

        public void ObserveHeartbeat(Guid nodeId, bool healthy, int activePeerCount, DateTimeOffset at)
        {
        }
    }
}
