using Vpn.Cli;
using Vpn.TestSupport;
using Vpn.TestSupport.Oidc;

namespace Vpn.EndToEnd.Vpnctl;

/// <summary>
/// The stack vpnctl is tested against: real entry (PostgreSQL) and core processes on the <see cref="ConsumerLab"/>
/// topology (linux dataplane, NAT, the node's resolver), core reconciling with entry as in production (so doctor's
/// "synced" gate means something), and a real OpenID provider (npm oidc-provider on loopback) whose native client
/// <see cref="OidcProvider.NativeClientId"/> entry redeems codes for. No client is up at setup: client B is the
/// reference client's, brought up from the file vpnctl writes.
/// </summary>
public sealed class VpnctlStackFixture : ConsumerStackFixture
{
    public override string NatDriver => "cli";

    protected override bool CoreReconcilesWithEntry => true;

    protected override IReadOnlyList<WgQuickClient> ClientsUpAtSetup => [];

    public OidcProvider Provider { get; private set; } = null!;

    // A reconciling core heartbeats unhealthy while its resolver check fails, and the node's resolver starts only in
    // CompleteSetUpAsync, after the wait for a healthy heartbeat: core starts without the check, and is started again
    // with it once the resolver answers (doctor's resolver gate then means something).
    private bool _resolverRunning;

    protected override void AddCoreEnvironment(IDictionary<string, string?> environment)
    {
        base.AddCoreEnvironment(environment);
        environment["CORE_RESOLVER_CHECK"] = _resolverRunning ? "true" : "false";
    }

    protected override async Task CompleteSetUpAsync(CancellationToken cancellationToken)
    {
        await base.CompleteSetUpAsync(cancellationToken);
        _resolverRunning = true;
        await StopCoreAsync();
        var since = DateTimeOffset.UtcNow;
        await StartCoreAsync(cancellationToken: cancellationToken);
        await WaitForNodeHeartbeatAsync(since, TimeSpan.FromSeconds(45), cancellationToken);
        Step("core restarted with its resolver check on; healthy");
    }

    protected override IEnumerable<string> RequiredTools => [.. base.RequiredTools, "node"];

    protected override async Task StartDependenciesAsync(CancellationToken cancellationToken)
    {
        Provider = await OidcProvider.StartAsync(cancellationToken: cancellationToken);
        Step($"OpenID provider: {Provider.Issuer}");
    }

    protected override async ValueTask StopDependenciesAsync()
    {
        if (Provider is not null)
        {
            await Provider.DisposeAsync();
        }
        File.Delete(CatalogKeyFile);
    }

    protected override void AddEntryEnvironment(IDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        environment["GOOGLE_ISSUER"] = Provider.Issuer;
        environment["GOOGLE_CLIENT_ID"] = OidcProvider.NativeClientId;
        environment["GOOGLE_CLIENT_SECRET"] = OidcProvider.NativeClientSecret;
        // The wrong-token cases spend the per-address budget of admin-token failures (10 a minute by default); the
        // throttle is Entry.Tests' subject, not this suite's, and a spent budget would refuse the right token next.
        environment["APP_RATE_LIMIT_ADMIN_FAILURES_PER_MIN"] = "1000";
        // The server list's signing key, as an operator's file; the client pins its public key.
        var key = new CatalogSigningKey();
        CatalogPublicKey = Convert.ToBase64String(key.PublicKey);
        File.WriteAllText(CatalogKeyFile, key.Pem);
        environment["APP_CATALOG_SIGNING_KEY_FILE"] = CatalogKeyFile;
    }

    /// <summary>The public key (base64) of the key entry signs GET /v1/locations with.</summary>
    public string CatalogPublicKey { get; private set; } = "";

    private string CatalogKeyFile { get; } = Path.Combine(Path.GetTempPath(), $"vpnctl-catalog-{Guid.NewGuid():N}.pem");

    /// <summary>vpnctl run in-process: its entry point with these arguments, the admin token and URL in its environment, output captured.</summary>
    public Task<VpnctlRun> RunAsync(params string[] args) => RunWithAsync(null, null, args);

    public async Task<VpnctlRun> RunWithAsync(IReadOnlyDictionary<string, string?>? environment, Func<Uri, CancellationToken, Task>? browser, params string[] args)
    {
        var values = new Dictionary<string, string?>
        {
            ["VPNCTL_URL"] = EntryBaseAddress.ToString(),
            ["VPNCTL_ADMIN_TOKEN"] = AdminToken,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            values[name] = value;
        }
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error, name => values.GetValueOrDefault(name)) { OpenBrowser = browser };
        var exit = await CliApp.RunAsync(args, context, TestContext.Current.CancellationToken);
        var run = new VpnctlRun(args, exit, output.ToString(), error.ToString());
        Step(run.Describe());
        return run;
    }
}

/// <summary>One vpnctl run: arguments, exit code, stdout and stderr.</summary>
public sealed record VpnctlRun(string[] Args, int ExitCode, string Out, string Err)
{
    public JsonNode Json => JsonNode.Parse(Out) ?? throw new InvalidOperationException($"stdout is JSON null: {Describe()}");

    public string Describe() => $"vpnctl {string.Join(' ', Args)} → exit {ExitCode}\n--- stdout ---\n{Out}--- stderr ---\n{Err}";
}
