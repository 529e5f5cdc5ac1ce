using System.Text.Json.Serialization;

namespace Vpn.Cli.Client;

/// <summary>
/// What the reference client keeps between runs, in <c>&lt;state-dir&gt;/client.json</c> (mode 0600): the sign-in
/// (access token, customer), the device (its key pair: the private key stays on this machine), the session (its
/// key for reconnects) and a start whose answer was lost (its Idempotency-Key, reused by the next connect).
/// </summary>
public sealed class ClientState
{
    public const string FileName = "client.json";

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    };

    public string? EntryUrl { get; set; }

    public string? CustomerId { get; set; }

    public string? AccessToken { get; set; }

    public DateTimeOffset? AccessTokenExpiresAt { get; set; }

    public DeviceState? Device { get; set; }

    public SessionState? Session { get; set; }

    public PendingStart? PendingStart { get; set; }

    public static string PathIn(string directory) => System.IO.Path.Combine(directory, FileName);

    public static ClientState Load(string directory)
    {
        var path = PathIn(directory);
        if (!File.Exists(path))
        {
            return new ClientState();
        }
        try
        {
            return JsonSerializer.Deserialize<ClientState>(File.ReadAllText(path), Options) ?? new ClientState();
        }
        catch (JsonException e)
        {
            throw new CliException(ExitCodes.Usage, $"the state file {path} is not vpnctl's ({e.Message}); remove it to start afresh");
        }
    }

    public void Save(string directory) => PrivateFiles.Write(PathIn(PrivateFiles.EnsureDirectory(directory)), JsonSerializer.Serialize(this, Options));
}

public sealed record DeviceState(string Id, string Name, string PublicKey, string PrivateKey)
{
    public override string ToString() => $"DeviceState {{ Id = {Id}, Name = {Name}, PublicKey = {PublicKey} }}";
}

public sealed record SessionState(string Id, string Key, string? NodeName, string? ConfigPath)
{
    public override string ToString() => $"SessionState {{ Id = {Id}, NodeName = {NodeName} }}";
}

/// <summary>A start sent without an answer: the same body is sent again with the same key, so entry starts it at most once.</summary>
public sealed record PendingStart(string IdempotencyKey, string Body);
