using Vpn.TestSupport;

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

    /// <summary>Writes the private key to a 0600 file (what <c>wg set … private-key</c> and core's *_FILE settings read).</summary>
    public string WritePrivateKeyFile(string path)
    {
        File.WriteAllText(path, PrivateKey + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    public override string ToString() => $"WireGuardKeys {{ PublicKey = {PublicKey} }}";
}
