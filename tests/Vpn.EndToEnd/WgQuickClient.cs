namespace Vpn.EndToEnd;

/// <summary>
/// A consumer device in its own namespace, brought up by the real <c>wg-quick up</c> from a session's wg-quick file, so
/// its routing is exactly wg-quick's (both default routes through the tunnel by policy routing, the endpoint excluded by
/// fwmark). The file is written as entry sent it with two changes: the device's private key instead of the placeholder,
/// and no <c>DNS =</c> line — its resolvers go to <c>/etc/netns/&lt;namespace&gt;/resolv.conf</c> instead, which
/// <c>ip netns exec</c> bind-mounts over /etc/resolv.conf (what wg-quick's resolvconf call would do on a real machine).
/// Nothing that prints the file's contents is ever called: it holds the private key.
/// </summary>
public sealed class WgQuickClient
{
    private readonly string _workDirectory;
    private readonly string _userspaceWrapper;

    internal WgQuickClient(string label, NetworkNamespace ns, string interfaceName, string homeIp, string homeIp6, string workDirectory,
        string userspaceWrapper)
    {
        Label = label;
        Namespace = ns;
        Interface = interfaceName;
        HomeIp = homeIp;
        HomeIp6 = homeIp6;
        _workDirectory = workDirectory;
        _userspaceWrapper = userspaceWrapper;
    }

    public string Label { get; }

    public NetworkNamespace Namespace { get; }

    /// <summary>The tunnel interface: wg-quick names it after the file.</summary>
    public string Interface { get; }

    /// <summary>The device's own addresses on its home network (what a leak would show the internet).</summary>
    public string HomeIp { get; }

    public string HomeIp6 { get; }

    /// <summary>The session's tunnel addresses (without prefix length), once up.</summary>
    public string? TunnelIp { get; private set; }

    public string? TunnelIp6 { get; private set; }

    public string WgQuickOutput { get; private set; } = "(not run)";

    public string ConfigPath => Path.Combine(_workDirectory, Interface + ".conf");

    public string NetnsEtcDirectory => Path.Combine("/etc/netns", Namespace.Name);

    /// <summary>
    /// Writes the file and resolv.conf and runs <c>wg-quick up</c> (userspace wireguard-go, as wg-quick falls back to
    /// without the kernel module). Throws with wg-quick's output (never the file) when it fails.
    /// </summary>
    public async Task UpAsync(string wireguardConfig, string privateKey)
    {
        ArgumentNullException.ThrowIfNull(wireguardConfig);
        ArgumentNullException.ThrowIfNull(privateKey);
        var config = WgQuickConfig.Parse(wireguardConfig);
        if (!config.HasPrivateKeyPlaceholder)
        {
            throw new ArgumentException("The session's config must carry the private key placeholder.", nameof(wireguardConfig));
        }
        TunnelIp = config.Interface.Addresses.Select(a => a.Split('/')[0]).FirstOrDefault(a => a.Contains('.', StringComparison.Ordinal));
        TunnelIp6 = config.Interface.Addresses.Select(a => a.Split('/')[0]).FirstOrDefault(a => a.Contains(':', StringComparison.Ordinal));

        var text = new StringBuilder();
        foreach (var line in wireguardConfig.Split('\n'))
        {
            var key = line.Split('=', 2)[0].Trim();
            if (key.Equals("DNS", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            text.Append(key.Equals("PrivateKey", StringComparison.OrdinalIgnoreCase) ? $"PrivateKey = {privateKey}" : line.TrimEnd('\r')).Append('\n');
        }
        using (var stream = new FileStream(ConfigPath, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text.ToString());
        }

        WriteResolvConf(config.Interface.Dns);
        await RunWgQuickAsync("up", null);
    }

    /// <summary>
    /// <c>wg-quick up</c> on the file someone else wrote at <see cref="ConfigPath"/> (the reference client's), unchanged,
    /// its <c>DNS =</c> line included: wg-quick hands those resolvers to <c>resolvconf</c>, which here is a stand-in on
    /// PATH that only accepts them, since they are already in the namespace's resolv.conf (as for <see cref="UpAsync"/>).
    /// </summary>
    public async Task UpFromFileAsync()
    {
        var config = WgQuickConfig.Parse(File.ReadAllText(ConfigPath));
        TunnelIp = config.Interface.Addresses.Select(a => a.Split('/')[0]).FirstOrDefault(a => a.Contains('.', StringComparison.Ordinal));
        TunnelIp6 = config.Interface.Addresses.Select(a => a.Split('/')[0]).FirstOrDefault(a => a.Contains(':', StringComparison.Ordinal));
        WriteResolvConf(config.Interface.Dns);
        await RunWgQuickAsync("up", ResolvconfStandIn());
    }

    /// <summary><c>wg-quick down</c> of a tunnel <see cref="UpFromFileAsync"/> brought up (the same stand-in resolvconf).</summary>
    public async Task DownFromFileAsync() => await RunWgQuickAsync("down", ResolvconfStandIn());

    private string ResolvconfStandIn()
    {
        var directory = Path.Combine(_workDirectory, Label + "-resolvconf");
        Directory.CreateDirectory(directory);
        var script = Path.Combine(directory, "resolvconf");
        File.WriteAllText(script, "#!/bin/sh\n# wg-quick's resolvconf call: the resolvers are already in the namespace's resolv.conf.\ncat >/dev/null\nexit 0\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return directory;
    }

    private void WriteResolvConf(IReadOnlyList<string> dns)
    {
        var resolvConf = string.Concat(dns.Select(server => $"nameserver {server}\n")) + "options timeout:2 attempts:2\n";
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Directory.CreateDirectory(NetnsEtcDirectory);
                File.WriteAllText(Path.Combine(NetnsEtcDirectory, "resolv.conf"), resolvConf);
                break;
            }
            catch (DirectoryNotFoundException) when (attempt < 5)
            {
                // Another lab removed the (then empty) /etc/netns between our steps: create it again.
            }
        }
    }

    private async Task RunWgQuickAsync(string verb, string? pathPrefix)
    {
        var environment = new Dictionary<string, string>
        {
            ["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1",
            ["WG_QUICK_USERSPACE_IMPLEMENTATION"] = _userspaceWrapper,
        };
        if (pathPrefix is not null)
        {
            environment["PATH"] = pathPrefix + ":" + Environment.GetEnvironmentVariable("PATH");
        }
        var result = await ProcessRunner.RunAsync("ip", ["netns", "exec", Namespace.Name, "wg-quick", verb, ConfigPath], null,
            TimeSpan.FromSeconds(30), environment);
        WgQuickOutput = $"exit {result.ExitCode}\n{result.StandardOutput}{result.StandardError}";
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"client {Label}: wg-quick {verb} failed:\n{WgQuickOutput}\n{ReadWireGuardLog()}");
        }
    }

    public Task<ProcessResult> ExecAsync(TimeSpan timeout, string fileName, params string[] arguments) =>
        Namespace.ExecAsync(fileName, arguments, null, timeout);

    /// <summary>curl -4 or -6 (family 4 or 6) of <paramref name="url"/>, bounded by <paramref name="maxTime"/>; stdout is the body.</summary>
    public Task<ProcessResult> CurlAsync(int family, string url, TimeSpan maxTime, TimeSpan? connectTimeout = null)
    {
        var seconds = maxTime.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture);
        List<string> args = [family == 6 ? "-6" : "-4", "-sS", "--max-time", seconds];
        if (connectTimeout is { } connect)
        {
            args.AddRange(["--connect-timeout", connect.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)]);
        }
        args.Add(url);
        return Namespace.ExecAsync("curl", args, null, maxTime + TimeSpan.FromSeconds(10));
    }

    /// <summary>wireguard-go's output (the wrapper sends it to a file), for diagnostics.</summary>
    public string ReadWireGuardLog()
    {
        try
        {
            return File.ReadAllText(Path.Combine(_workDirectory, Interface + ".wireguard-go.log"));
        }
        catch (IOException)
        {
            return "(no wireguard-go log)";
        }
    }

    /// <summary>
    /// The /etc/netns entry (and /etc/netns itself once empty, as it was before) and the config file;
    /// the namespace itself is the lab's.
    /// </summary>
    internal void RemoveFiles()
    {
        try
        {
            Directory.Delete(NetnsEtcDirectory, recursive: true);
            Directory.Delete(Path.GetDirectoryName(NetnsEtcDirectory)!);
        }
        catch (IOException)
        {
            // Not there, or /etc/netns still holds another namespace's entry.
        }
        File.Delete(ConfigPath);
    }

    public override string ToString() => $"client {Label} ({Namespace.Name}, home {HomeIp} {HomeIp6}, tunnel {TunnelIp} {TunnelIp6})";
}
