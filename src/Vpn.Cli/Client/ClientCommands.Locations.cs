using Vpn.Cli.Output;
using Vpn.Contracts.Http;

namespace Vpn.Cli.Client;

public static partial class ClientCommands
{
    /// <summary>
    /// vpnctl client locations: the signed server list as an app shows its location picker, verified first — the
    /// signature over the bytes received, a key the app pins (--trust-key or $VPNCTL_CATALOG_KEYS, base64 Ed25519 public
    /// keys), and the list's validity window. A list that fails any of them is not shown (exit 1).
    /// </summary>
    private static Command CreateLocations(GlobalOptions options, CliContext context)
    {
        var trust = new Option<string[]>("--trust-key")
        {
            Description = "a pinned Ed25519 public key (base64, 32 bytes) the list may be signed with; repeat for rotation (default: $VPNCTL_CATALOG_KEYS, comma-separated)",
            AllowMultipleArgumentsPerToken = false,
        };
        return new Command("locations", "the signed server list: verify its signature and freshness, then show regions, load and availability")
            .With(trust).Handle(options, context, async run =>
            {
                var keys = (run.Get(trust) is { Length: > 0 } given ? given : (run.Context.Environment("VPNCTL_CATALOG_KEYS") ?? "").Split(',',
                    StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select(PinnedKey).DistinctBy(k => SignedLocations.KeyId(k)).ToDictionary(k => SignedLocations.KeyId(k), k => k);
                if (keys.Count == 0)
                {
                    throw new CliException(ExitCodes.Usage, "no pinned key: pass --trust-key <base64 public key> or set VPNCTL_CATALOG_KEYS (an app ships its keys)");
                }
                using var entry = run.Anonymous();
                var answer = await entry.GetAsync("/v1/locations", run.CancellationToken);
                if (!answer.IsSuccess)
                {
                    throw ApiProblemException.From(answer.Status, answer.ContentType, answer.Body);
                }
                var verified = SignedLocations.Verify(answer.RawBody, keys, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(2));
                if (!verified.IsValid)
                {
                    run.Context.Error.WriteLine("error: the server list is not to be trusted: " + Refusal(verified));
                    return ExitCodes.CheckFailed;
                }
                var list = verified.Payload!;
                var json = new JsonObject
                {
                    ["verified"] = true,
                    ["key_id"] = list.KeyId,
                    ["issued_at"] = list.IssuedAt,
                    ["expires_at"] = list.ExpiresAt,
                    ["locations"] = new JsonArray([.. list.Locations.Select(l => (JsonNode)new JsonObject
                    {
                        ["region"] = l.Region, ["country_code"] = l.CountryCode, ["city_code"] = l.CityCode, ["pool"] = l.Pool,
                        ["load"] = l.Load, ["available"] = l.Available,
                    })]),
                };
                run.Print(json, w =>
                {
                    w.WriteLine($"verified: signed by {list.KeyId}, valid until {list.ExpiresAt:u}");
                    var table = new Table("REGION", "COUNTRY", "CITY", "POOL", "LOAD", "AVAILABLE");
                    foreach (var l in list.Locations)
                    {
                        table.Add(l.Region, l.CountryCode, l.CityCode, l.Pool, l.Load, l.Available ? "yes" : "no");
                    }
                    table.WriteTo(w);
                });
                return ExitCodes.Ok;
            });
    }

    private static byte[] PinnedKey(string text)
    {
        try
        {
            var key = Convert.FromBase64String(text);
            return key.Length == 32 ? key : throw new FormatException();
        }
        catch (FormatException)
        {
            throw new CliException(ExitCodes.Usage, "a pinned key must be the base64 of a 32-byte Ed25519 public key");
        }
    }

    private static string Refusal(LocationsVerification verification) => verification.Verdict switch
    {
        LocationsVerdict.BadSignature => "its signature does not match its content (tampered on the way, or signed by another key under this id)",
        LocationsVerdict.UnknownKey => $"it is signed by key {verification.Payload?.KeyId}, which this client does not pin",
        LocationsVerdict.Expired => $"it expired at {verification.Payload?.ExpiresAt:u} (a stale or replayed list)",
        LocationsVerdict.NotYetValid => $"it is issued in the future ({verification.Payload?.IssuedAt:u}): check this machine's clock",
        _ => "it is not a signed list (malformed)",
    };
}
