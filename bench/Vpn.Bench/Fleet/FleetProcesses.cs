using System.Net.Http.Json;
using System.Text.Json;
using Vpn.Domain.WireGuard;
using Vpn.Harness.Postgres;

namespace Vpn.Bench.Fleet;

/// <summary>One entry process (Release build) on loopback TCP; the first replica also listens on a unix socket, for the cores.</summary>
internal sealed class EntryReplica : IAsyncDisposable
{
    private readonly BackgroundProcess _process;

    private EntryReplica(BackgroundProcess process, Uri baseAddress, string? socketPath)
    {
        _process = process;
        BaseAddress = baseAddress;
        SocketPath = socketPath;
    }

    public Uri BaseAddress { get; }

    public string? SocketPath { get; }

    public int Pid => _process.Id;

    public string Output => _process.Output;

    public static async Task<EntryReplica> StartAsync(FleetRig rig, int index, IDictionary<string, string?>? settings)
    {
        var baseAddress = new Uri($"http://127.0.0.1:{FleetRig.FreePort()}/");
        var socket = index == 0 ? Path.Combine(rig.WorkDirectory, "entry.sock") : null;
        var dll = FleetRig.ServiceDll("Vpn.Entry");
        var environment = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = rig.DatabaseUrl,
            ["ADMIN_API_TOKEN"] = rig.AdminToken,
            ["APP_ENV"] = "development",
            ["ASPNETCORE_URLS"] = baseAddress.ToString().TrimEnd('/') + (socket is null ? "" : ";http://unix:" + socket),
            ["APP_RATE_LIMIT_SESSIONS_PER_MIN"] = "100000",
            ["APP_SEED_DEV_DATA"] = "false",
            ["Logging__LogLevel__Default"] = "Warning",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            environment[key] = value;
        }
        var process = new BackgroundProcess("dotnet", [dll], environment, Path.GetDirectoryName(dll));
        var replica = new EntryReplica(process, baseAddress, socket);
        using var probe = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                await replica.DisposeAsync();
                throw new InvalidOperationException($"entry {index} did not become ready:\n{process.Output}");
            }
            try
            {
                using var response = await probe.GetAsync("/readyz");
                if (response.IsSuccessStatusCode)
                {
                    return replica;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
    }

    public async ValueTask DisposeAsync() => await _process.DisposeAsync();
}

/// <summary>A node: a network namespace, a wireguard-go device in it, and core on that device, registered with entry.</summary>
internal sealed class CoreNode : IAsyncDisposable
{
    private NetworkNamespace _namespace = null!;
    private BackgroundProcess _wireGuard = null!;
    private BackgroundProcess? _core;
    private Dictionary<string, string?> _coreEnvironment = [];

    public Guid NodeId { get; private set; }

    /// <summary>The wireguard-go interface (in <see cref="Namespace"/>).</summary>
    public string InterfaceName { get; private set; } = "";

    public NetworkNamespace Namespace => _namespace;

    public int CorePid => _core!.Id;

    public int WireGuardPid => _wireGuard.Id;

    public string Output => _core?.Output ?? "";

    public static async Task<CoreNode> StartAsync(FleetRig rig, int index)
    {
        var node = new CoreNode();
        try
        {
            await node.StartInnerAsync(rig, index);
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    private async Task StartInnerAsync(FleetRig rig, int index)
    {
        _namespace = await NetworkNamespace.CreateAsync("vfleet");
        var interfaceName = InterfaceName = NetworkNamespace.UniqueName("wgf");
        _wireGuard = _namespace.Start("wireguard-go", ["-f", interfaceName], new Dictionary<string, string?>
        {
            ["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1",
            ["LOG_LEVEL"] = "error",
        });
        var uapi = $"/var/run/wireguard/{interfaceName}.sock";
        for (var deadline = DateTime.UtcNow.AddSeconds(10); !File.Exists(uapi); await Task.Delay(20))
        {
            if (_wireGuard.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException("wireguard-go did not start: " + _wireGuard.Output);
            }
        }
        var privateKey = WireGuardKey.Generate();
        var keyFile = Path.Combine(rig.WorkDirectory, $"node{index}.key");
        await File.WriteAllTextAsync(keyFile, privateKey.ToBase64());
        var publicKey = (await ProcessRunner.RunAsync("wg", ["pubkey"], privateKey.ToBase64() + "\n")).EnsureSuccess("wg pubkey").StandardOutput.Trim();
        var socket = Path.Combine(rig.WorkDirectory, $"core{index}.sock");

        using var admin = rig.AdminClient();
        using var registered = await admin.PostAsJsonAsync("/v1/admin/nodes", new
        {
            name = $"core-{index}",
            region = FleetRig.Region,
            country_code = "DE",
            public_endpoint = $"198.51.100.{index + 1}:51820",
            public_key = publicKey,
            core_endpoint = "unix:" + socket,
            capacity = 65535,
        }, FleetRig.Json);
        registered.EnsureSuccessStatusCode();
        NodeId = (await registered.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

        _coreEnvironment = new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = "unix:" + socket,
            ["WG_DATAPLANE"] = "linux",
            ["WG_INTERFACE"] = interfaceName,
            ["WG_PRIVATE_KEY_FILE"] = keyFile,
            ["WG_LISTEN_PORT"] = "51820",
            ["WG_CLIENT_POOL"] = "10.64.0.0/16",
            ["WG_NAT_DRIVER"] = "cli",
            ["CORE_RESOLVER_CHECK"] = "false",
            ["CORE_ENTRY_URL"] = "unix:" + rig.Entries[0].SocketPath,
            ["CORE_NODE_ID"] = NodeId.ToString(),
            ["ADMIN_API_TOKEN"] = rig.AdminToken,
            ["CORE_HEARTBEAT_SECS"] = "2",
            ["CORE_RECONCILE_SECS"] = rig.CoreReconcileSeconds.ToString(CultureInfo.InvariantCulture),
            ["ASPNETCORE_URLS"] = null,
            ["Logging__LogLevel__Default"] = "Warning",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        };
        StartCore();
    }

    private void StartCore() => _core = _namespace.Start("dotnet", [FleetRig.ServiceDll("Vpn.Core")], _coreEnvironment);

    /// <summary>SIGKILL of the core process, as a crash would (wireguard-go and its peers stay, as on a real node).</summary>
    public void KillCore() => _core?.Kill();

    /// <summary>Core started again with the same settings (what a supervisor does after a crash).</summary>
    public async Task RestartCoreAsync()
    {
        if (_core is not null)
        {
            await _core.DisposeAsync();
        }
        StartCore();
    }

    /// <summary>The device's peers as <c>wg show &lt;if&gt; allowed-ips</c> lists them: public key → allowed IPs.</summary>
    public async Task<IReadOnlyDictionary<string, string>> ReadPeersAsync()
    {
        var output = await _namespace.ExecCheckedAsync("wg", "show", InterfaceName, "allowed-ips");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('\t', 2))
            .ToDictionary(f => f[0], f => f.Length > 1 ? f[1].Trim() : "", StringComparer.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        if (_core is not null)
        {
            await _core.DisposeAsync();
        }
        if (_wireGuard is not null)
        {
            await _wireGuard.DisposeAsync();
        }
        if (_namespace is not null)
        {
            await _namespace.DisposeAsync();
        }
    }
}
