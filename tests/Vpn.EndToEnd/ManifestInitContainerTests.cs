using Vpn.TestSupport;

namespace Vpn.EndToEnd;

/// <summary>
/// The init containers, run as the overlays render them: the built binary of their image with exactly the environment
/// the kubelet would give them (<see cref="RenderedContainer"/>: the image's ENV, the rendered envFrom and env) and a
/// file of the right shape for every *_FILE setting. entry's <c>migrate</c> must apply the migrations to a throwaway
/// PostgreSQL — the shipped manifest gave it only DATABASE_URL_FILE while the image says APP_ENV=production, and the
/// production settings check stopped it (exit 2); core's <c>resolver-config</c> must write unbound's config.
/// </summary>
[Collection(nameof(ManifestInitContainerTests))]
public sealed class ManifestInitContainerTests
{
    // Inherited variables of these families are blanked: the command must get its settings from the manifest alone.
    private static readonly string[] s_settingFamilies = ["APP_", "DATABASE_URL", "ADMIN_API_TOKEN", "GOOGLE_", "CORE_", "WG_", "ASPNETCORE_"];

    private static readonly string[] s_secrets = ["manifest-test-admin-token", "manifest-test-jwt-secret", "manifest-test-google-secret"];

    [Theory]
    [InlineData("dev")]
    [InlineData("prod")]
    public async Task MigrateInitContainer_WithTheRenderedEnvironment_AppliesTheMigrations(string overlay)
    {
        Prerequisites.Require(File.Exists(RepoLayout.EntryDll), $"built entry at {RepoLayout.EntryDll}");
        var documents = await ManifestOverlays.RenderAsync(overlay);
        var migrate = InitContainer(documents, "entry", "migrate");
        Assert.Equal(["migrate"], migrate["args"]!.AsArray().Select(a => (string?)a));

        await using var postgres = await PostgresServer.StartNewAsync();
        var databaseUrl = PostgresServer.ToUrl(await postgres.CreateDatabaseAsync("manifest_migrate"));
        using var certificates = new TestCertificates();
        var output = await RunAsync(documents, migrate, "entry.Dockerfile", RepoLayout.EntryDll, ["migrate"], setting => setting switch
        {
            "DATABASE_URL" => databaseUrl,
            "APP_CORE_TLS_CA" => File.ReadAllText(certificates.Ca.CertificateFile),
            "APP_CORE_TLS_CLIENT_CERT" => File.ReadAllText(certificates.Client.CertificateFile),
            "APP_CORE_TLS_CLIENT_KEY" => File.ReadAllText(certificates.Client.KeyFile),
            _ => CommonSecret(setting),
        });

        Assert.Contains("migration(s) applied", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dev")]
    [InlineData("prod")]
    [InlineData("prod-native-canary")]
    public async Task ResolverConfigInitContainer_WithTheRenderedEnvironment_WritesUnboundsConfig(string overlay)
    {
        Prerequisites.Require(File.Exists(RepoLayout.CoreDll), $"built core at {RepoLayout.CoreDll}");
        var documents = await ManifestOverlays.RenderAsync(overlay);
        var resolver = InitContainer(documents, "core-node", "resolver-config");
        var args = resolver["args"]!.AsArray().Select(a => (string)a!).ToList();
        Assert.Equal(["resolver-config", "--out", "/run/unbound/unbound.conf"], args);
        using var certificates = new TestCertificates();
        var outDirectory = Directory.CreateTempSubdirectory("vpn-resolver-config-").FullName;
        try
        {
            var outFile = Path.Combine(outDirectory, "unbound.conf");
            var output = await RunAsync(documents, resolver, "core.Dockerfile", RepoLayout.CoreDll, ["resolver-config", "--out", outFile], setting => setting switch
            {
                "WG_PRIVATE_KEY" => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
                "CORE_TLS_CERT" => File.ReadAllText(certificates.Server.CertificateFile),
                "CORE_TLS_KEY" => File.ReadAllText(certificates.Server.KeyFile),
                "CORE_TLS_CLIENT_CA" => File.ReadAllText(certificates.Ca.CertificateFile),
                _ => CommonSecret(setting),
            });

            var config = await File.ReadAllTextAsync(outFile, TestContext.Current.CancellationToken);
            Assert.Contains("interface: 10.64.0.1", config, StringComparison.Ordinal);
            Assert.Contains("access-control: 10.64.0.0/16 allow", config, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(outDirectory, recursive: true);
        }
    }

    private static string CommonSecret(string setting) => setting switch
    {
        "ADMIN_API_TOKEN" => "manifest-test-admin-token-0123456789abcdef",
        "APP_JWT_SIGNING_KEYS" => "2026-12:manifest-test-jwt-secret-0123456789abcdef",
        "GOOGLE_CLIENT_ID" => "manifest-test.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET" => "manifest-test-google-secret",
        "APP_LOG_REDACTION_KEY" => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        // A PKCS#8 Ed25519 key made for the test (as openssl genpkey -algorithm ed25519 writes one).
        "APP_CATALOG_SIGNING_KEY" => new CatalogSigningKey().Pem,
        _ => throw new InvalidOperationException($"The test does not know what goes in {setting}_FILE: add it here."),
    };

    private static JsonNode InitContainer(List<JsonObject> documents, string workload, string name) =>
        KubernetesManifests.Single(documents, "Deployment", workload)["spec"]!["template"]!["spec"]!["initContainers"]!.AsArray()
            .Single(c => (string?)c!["name"] == name)!;

    // Runs the command with the container's environment; returns its output after asserting exit 0 and no secret in it.
    private static async Task<string> RunAsync(List<JsonObject> documents, JsonNode container, string dockerfile, string dll, string[] arguments,
        Func<string, string> fileContent)
    {
        var root = Directory.CreateTempSubdirectory("vpn-init-mounts-").FullName;
        try
        {
            var environment = RenderedContainer.Environment(documents, container, Path.Combine(RepoLayout.Root, "deploy", "docker", dockerfile), root, fileContent);
            foreach (var inherited in System.Environment.GetEnvironmentVariables().Keys.Cast<string>())
            {
                if (s_settingFamilies.Any(f => inherited.StartsWith(f, StringComparison.Ordinal)) && !environment.ContainsKey(inherited))
                {
                    environment[inherited] = "";
                }
            }

            TestContext.Current.TestOutputHelper?.WriteLine($"{container["name"]}: APP_ENV={environment.GetValueOrDefault("APP_ENV")}, settings "
                + string.Join(' ', environment.Where(e => e.Value.Length > 0).Select(e => e.Key).Order(StringComparer.Ordinal)));
            var result = await ProcessRunner.RunAsync("dotnet", [dll, .. arguments], timeout: TimeSpan.FromMinutes(2), environment: environment);

            var output = result.StandardOutput + result.StandardError;
            Assert.True(result.ExitCode == 0, $"{container["name"]} exited {result.ExitCode}:\n{output}");
            foreach (var secret in s_secrets)
            {
                Assert.DoesNotContain(secret, output, StringComparison.Ordinal);
            }
            return output;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
