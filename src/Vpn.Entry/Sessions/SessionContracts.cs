using System.ComponentModel.DataAnnotations;

namespace Vpn.Entry.Sessions;

/// <summary>POST /v1/sessions body. Only device_id and region are required.</summary>
/// <summary>POST /v1/sessions. Only device_id and region are required (the handler answers 400 invalid_request without them).</summary>
public sealed record StartSessionRequest(
    [property: Required] string? DeviceId,
    [property: Required] string? Region,
    string? CountryCode,
    string? CityCode,
    string? Pool,
    string? NodeHint,
    bool? ReplaceExisting);

public sealed record SessionNodeView(Guid Id, string Name, string Region, string? CountryCode, string? CityCode, string? Pool,
    string Endpoint, string PublicKey);

/// <summary>
/// The client's tunnel interface. Address is the IPv4 prefix (kept for older clients); Addresses lists every prefix of
/// the session, IPv4 first (the IPv6 /128 only when the node gave one); Dns the node's resolvers, IPv4 first.
/// </summary>
public sealed record SessionInterfaceView(string Address, IReadOnlyList<string> Addresses, IReadOnlyList<string> Dns);

public sealed record SessionPeerView(string PublicKey, string Endpoint, IReadOnlyList<string> AllowedIps, int PersistentKeepalive);

/// <summary>The Session of the contract. SessionKey is present only in the answers that mint one.</summary>
public sealed record SessionView(
    Guid SessionId,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    string? SessionKey,
    string State,
    DateTimeOffset CreatedAt,
    Guid? DeviceId,
    SessionNodeView Node,
    SessionInterfaceView Interface,
    SessionPeerView Peer,
    string WireguardConfig);
