using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Security;
using Vpn.Contracts.Http;

namespace Vpn.Entry.Locations;

/// <summary>The signed server list as served: its body and ETag.</summary>
public sealed record SignedLocationList(byte[] Body, string ETag, DateTimeOffset IssuedAt);

/// <summary>
/// Makes the public server list from this replica's node registry: one entry per (region, country, city, pool), each
/// with a coarse load bucket over the nodes that can take a session now (healthy, fresh, not draining) and whether
/// any can. One signed list is served for <see cref="LocationCatalogOptions.CacheFor"/>, so a crowd of apps costs one
/// signature per period and sees one ETag. Nothing of a node beyond its location is in it.
/// </summary>
public sealed partial class LocationCatalog : IDisposable
{
    private readonly Nodes.INodeDirectory _nodes;
    private readonly EntryOptions _options;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private SignedLocationList? _current;

    public LocationCatalog(Nodes.INodeDirectory nodes, EntryOptions options, TimeProvider time, ILogger<LocationCatalog> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _nodes = nodes;
        _options = options;
        _time = time;
        SigningKey = options.Locations.SigningKey;
        if (SigningKey is null && !options.IsProduction)
        {
            SigningKey = new Ed25519PrivateKeyParameters(new SecureRandom());
        }
        var publicKey = SigningKey?.GeneratePublicKey().GetEncoded();
        KeyId = publicKey is null ? null : SignedLocations.KeyId(publicKey);
        if (publicKey is not null && options.Locations.SigningKey is null)
        {
            LogEphemeralKey(logger, KeyId!, Convert.ToBase64String(publicKey));
        }
    }

    public void Dispose() => _gate.Dispose();

    /// <summary>Null in production without APP_CATALOG_SIGNING_KEY(_FILE): the list is not served.</summary>
    public Ed25519PrivateKeyParameters? SigningKey { get; }

    public string? KeyId { get; }

    public async Task<SignedLocationList?> GetAsync(CancellationToken cancellationToken)
    {
        if (SigningKey is null)
        {
            return null;
        }
        var now = _time.GetUtcNow();
        if (Volatile.Read(ref _current) is { } fresh && now - fresh.IssuedAt < _options.Locations.CacheFor)
        {
            return fresh;
        }
        await _gate.WaitAsync(cancellationToken);
        try
        {
            now = _time.GetUtcNow();
            if (_current is { } other && now - other.IssuedAt < _options.Locations.CacheFor)
            {
                return other;
            }
            var snapshot = await _nodes.GetAsync(cancellationToken);
            // Issued at the start of the cache period, not this moment: Ed25519 is deterministic, so replicas with the same
            // registry serve the same bytes and ETag in a period, and a client's If-None-Match holds across replicas.
            var period = _options.Locations.CacheFor.Ticks;
            var issued = new DateTimeOffset(now.UtcTicks - now.UtcTicks % period, TimeSpan.Zero);
            var payload = new LocationsPayload(issued, issued + _options.Locations.Validity, Describe(snapshot.All, now), KeyId!);
            var body = SignedLocations.Sign(payload, SigningKey);
            var etag = "\"" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body)[..12]) + "\"";
            var list = new SignedLocationList(body, etag, issued);
            Volatile.Write(ref _current, list);
            return list;
        }
        finally
        {
            _gate.Release();
        }
    }

    private List<LocationEntry> Describe(IEnumerable<Nodes.NodeEntry> entries, DateTimeOffset now) =>
    [
        .. entries
            .GroupBy(e => (Region: e.Node.Region.ToLowerInvariant(), Country: e.Node.CountryCode?.ToUpperInvariant(),
                City: e.Node.CityCode?.ToLowerInvariant(), e.Node.Pool))
            .Select(g =>
            {
                // Selection's own rule: a node that could take a session (null), or could if it were not full.
                var verdicts = g.Select(e => (Entry: e, Rejection: Vpn.Domain.Nodes.NodeSelection.Reject(e.Describe(),
                    new Vpn.Domain.Nodes.NodeRequest(e.Node.Region), now, _options.NodeFreshness))).ToList();
                var open = verdicts.Where(v => v.Rejection is null or Vpn.Domain.Nodes.NodeRejection.AtCapacity).Select(v => v.Entry).ToList();
                var capacity = open.Sum(e => (long)e.Node.Capacity);
                var live = open.Sum(e => (long)e.LiveSessions);
                var available = verdicts.Any(v => v.Rejection is null);
                return new LocationEntry(g.Key.Region, g.Key.Country, g.Key.City, g.Key.Pool, LoadBucket(live, capacity, available), available);
            })
            .OrderBy(l => l.Region, StringComparer.Ordinal).ThenBy(l => l.CountryCode, StringComparer.Ordinal)
            .ThenBy(l => l.CityCode, StringComparer.Ordinal).ThenBy(l => l.Pool, StringComparer.Ordinal),
    ];

    /// <summary>low under half full, medium under 80 %, high below full, full when no node can take a session.</summary>
    public static string LoadBucket(long live, long capacity, bool available) =>
        !available || capacity == 0 ? "full" : live * 2 < capacity ? "low" : live * 5 < capacity * 4 ? "medium" : "high";

    [LoggerMessage(Level = LogLevel.Warning, Message = "No APP_CATALOG_SIGNING_KEY: GET /v1/locations is signed with a key made at start, key id {KeyId}, public key {PublicKey} (development only).")]
    private static partial void LogEphemeralKey(ILogger logger, string keyId, string publicKey);
}
