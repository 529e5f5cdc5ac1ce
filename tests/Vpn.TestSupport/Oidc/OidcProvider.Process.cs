using System.Globalization;
using System.Text.Json;
using Vpn.Harness;

namespace Vpn.TestSupport.Oidc;

// The provider's node process: start, stop, restart, and the checks before the first start.
public sealed partial class OidcProvider
{
    /// <summary>Starts the provider on a port the kernel picks (no race for a "free" port) and waits until it listens.</summary>
    public static async Task<OidcProvider> StartAsync(OidcProviderOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new OidcProviderOptions();
        var node = Prerequisites.FindExecutable("node");
        Prerequisites.Require(node is not null, "'node' on PATH (the OpenID provider fixture runs on Node.js)");
        var problem = await s_nodeProblem.Value;
        Prerequisites.Require(problem is null, problem ?? "");
        var directory = FindFixtureDirectory();
        Prerequisites.Require(directory is not null, "tests/oidc-provider/provider.mjs above the test's output directory");
        Prerequisites.Require(File.Exists(Path.Combine(directory!, "node_modules", "oidc-provider", "package.json")),
            $"the OpenID provider fixture's packages: run 'npm ci --prefix {directory}'");

        var (process, issuer) = await LaunchAsync(node!, directory!, options, port: 0, signingKey: null, cancellationToken);
        var provider = new OidcProvider(node!, directory!, options, process, issuer);
        try
        {
            await provider.CurrentKidAsync(cancellationToken);
        }
        catch
        {
            await provider.DisposeAsync();
            throw;
        }
        return provider;
    }

    /// <summary>Kills the node process: the provider's port refuses connections until <see cref="RestartAsync"/>.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_process is null)
        {
            return;
        }
        // Remember the key (and the output) so a restart can sign as before and a failure message can show the log.
        // A process that already died keeps the key it had when last asked.
        if (!_process.HasExited)
        {
            try
            {
                await CurrentKidAsync(cancellationToken);
            }
            catch (HttpRequestException)
            {
            }
        }
        _lastOutput = _process.Output;
        await _process.DisposeAsync();
        _process = null;
    }

    /// <summary>
    /// A new node process on the same port (same issuer), after a <see cref="StopAsync"/> or in place of the running
    /// one. With <paramref name="keepSigningKey"/> it signs with the key in use before (same kid, same JWKS); otherwise
    /// with a fresh one. Codes, sessions, tampering and counters of the old process are gone.
    /// </summary>
    public async Task RestartAsync(bool keepSigningKey = true, CancellationToken cancellationToken = default)
    {
        await StopAsync(cancellationToken);
        var port = new Uri(Issuer).Port;
        var (process, issuer) = await LaunchAsync(_node, _directory, _options, port, keepSigningKey ? _lastSigningKey : null, cancellationToken);
        if (issuer != Issuer)
        {
            await process.DisposeAsync();
            throw new InvalidOperationException($"The restarted provider announced {issuer} instead of {Issuer}.");
        }
        _process = process;
        await CurrentKidAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        _control.Dispose();
        if (_process is not null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
    }

    private static async Task<(BackgroundProcess Process, string Issuer)> LaunchAsync(string node, string directory, OidcProviderOptions options,
        int port, JsonElement? signingKey, CancellationToken cancellationToken)
    {
        var config = new Dictionary<string, object?> { ["require_pkce"] = options.RequirePkce };
        if (signingKey is { } key)
        {
            config["signing_key"] = key;
        }
        // The configuration (with a private key on restarts) goes through the environment, not the visible command line.
        var process = new BackgroundProcess(node,
            [Path.Combine(directory, "provider.mjs"), "--port", port.ToString(CultureInfo.InvariantCulture)],
            new Dictionary<string, string?>
            {
                ["OIDC_FIXTURE_CONFIG"] = JsonSerializer.Serialize(config),
                ["NODE_ENV"] = "test",
                ["DEBUG"] = null,
            },
            directory);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(StartTimeout);
            while (true)
            {
                // provider.mjs prints exactly one "READY <issuer>" line once it listens; oidc-provider's warnings go to stderr.
                var ready = process.Output.Split('\n').FirstOrDefault(l => l.StartsWith("READY ", StringComparison.Ordinal));
                if (ready is not null)
                {
                    return (process, ready["READY ".Length..].Trim());
                }
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"The OIDC provider fixture exited before it was ready: {process.Output}");
                }
                try
                {
                    await Task.Delay(20, timeout.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"The OIDC provider fixture was not ready within {StartTimeout.TotalSeconds:F0} s: {process.Output}");
                }
            }
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>tests/oidc-provider of the repository, found by walking up from the test's output directory.</summary>
    private static string? FindFixtureDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "oidc-provider");
            if (File.Exists(Path.Combine(candidate, "provider.mjs")))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>oidc-provider 9 needs Node.js 20.12 or later (node:crypto's hash); null when node is recent enough.</summary>
    private static async Task<string?> FindNodeProblemAsync()
    {
        var node = Prerequisites.FindExecutable("node");
        if (node is null)
        {
            return "'node' on PATH";
        }
        var result = await ProcessRunner.RunAsync(node, ["--version"], timeout: TimeSpan.FromSeconds(10));
        var text = result.StandardOutput.Trim().TrimStart('v');
        var parts = text.Split('.');
        if (result.ExitCode != 0 || parts.Length < 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor))
        {
            return $"a working 'node' (node --version said '{result.StandardOutput.Trim()} {result.StandardError.Trim()}')";
        }
        return major > 20 || (major == 20 && minor >= 12) ? null : $"Node.js 20.12 or later for oidc-provider 9 (found {text})";
    }
}
