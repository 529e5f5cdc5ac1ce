namespace Vpn.Entry.Sessions;

/// <summary>POST /v1/sessions body. Only device_id and region are required.</summary>
public sealed record StartSessionRequest(
    string? DeviceId,
    string? Region,
    string? CountryCode,
    string? CityCode,
    string? Pool,
    string? NodeHint,
    bool? ReplaceExisting);

public sealed record SessionNodeView(Guid Id, string Name, string Region, string? CountryCode, string? CityCode, string? Pool,
    string Endpoint, string PublicKey);

public sealed record SessionInterfaceView(string Address, IReadOnlyList<string> Dns);

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
