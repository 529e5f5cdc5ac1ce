namespace Vpn.EndToEnd;

/// <summary>A key pair made by the real <c>wg</c> tool, so the tests do not trust our own key code.</summary>
public sealed record WireGuardKeys(string PrivateKey, string PublicKey)
{
    public static async Task<WireGuardKeys> GenerateAsync()
    {
        var privateKey = (await ProcessRunner.RunAsync("wg", "genkey")).EnsureSuccess("wg genkey").StandardOutput.Trim();
        var publicKey = (await ProcessRunner.RunAsync("wg", ["pubkey"], privateKey + "\n")).EnsureSuccess("wg pubkey").StandardOutput.Trim();
        return new WireGuardKeys(privateKey, publicKey);
    }

    /// <summary><paramref name="count"/> key pairs from one shell running <c>wg genkey</c>/<c>wg pubkey</c> (one process, not 2×count).</summary>
    public static async Task<IReadOnlyList<WireGuardKeys>> GenerateManyAsync(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        const string script = """
            i=0
            while [ "$i" -lt "$1" ]; do
              k=$(wg genkey) || exit 1
              p=$(printf '%s\n' "$k" | wg pubkey) || exit 1
              printf '%s %s\n' "$k" "$p"
              i=$((i+1))
            done
            """;
        var result = await ProcessRunner.RunAsync("sh", ["-c", script, "genkeys", count.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            null, TimeSpan.FromSeconds(60));
        if (result.ExitCode != 0)
        {
            // stdout holds private keys: never in a message.
            throw new InvalidOperationException($"generating {count} WireGuard key pairs failed ({result.ExitCode}): {result.StandardError.Trim()}");
        }
        var keys = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' '))
            .Select(parts => new WireGuardKeys(parts[0], parts[1]))
            .ToList();
        return keys.Count == count ? keys : throw new InvalidOperationException($"expected {count} key pairs, got {keys.Count}");
    }

    /// <summary>Writes the private key to a 0600 file (what <c>wg set … private-key</c> and core's *_FILE settings read).</summary>
    public string WritePrivateKeyFile(string path)
    {
        File.WriteAllText(path, PrivateKey + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    public override string ToString() => $"WireGuardKeys {{ PublicKey = {PublicKey} }}";
}
