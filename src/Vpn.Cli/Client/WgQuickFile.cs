namespace Vpn.Cli.Client;

/// <summary>
/// The session's wg-quick file with the device's private key filled in: entry sends it with the line
/// <c>PrivateKey = &lt;your device private key&gt;</c>, since it never sees the key. Written 0600 (<see cref="PrivateFiles"/>).
/// </summary>
public static class WgQuickFile
{
    public static string Fill(string wireguardConfig, string privateKey)
    {
        var lines = wireguardConfig.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var filled = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Split('=', 2)[0].Trim().Equals("PrivateKey", StringComparison.OrdinalIgnoreCase))
            {
                lines[i] = "PrivateKey = " + privateKey;
                filled++;
            }
        }
        return filled == 1 ? string.Join('\n', lines)
            : throw new CliException(ExitCodes.Unavailable, $"the session's wg-quick file has {filled} PrivateKey lines, expected one");
    }

    /// <summary>wg-quick names the interface after the file: at most 15 characters of [A-Za-z0-9_=+.-].</summary>
    public static void CheckName(string path)
    {
        var name = Path.GetFileName(path);
        var stem = name.EndsWith(".conf", StringComparison.Ordinal) ? name[..^5] : null;
        if (stem is null || stem.Length is 0 or > 15 || !stem.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '=' or '+' or '.' or '-'))
        {
            throw new CliException(ExitCodes.Usage, $"--out must name a file <interface>.conf with an interface name of 1-15 characters [A-Za-z0-9_=+.-] (wg-quick takes it from the file), got '{name}'");
        }
    }
}
