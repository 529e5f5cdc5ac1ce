using Vpn.TestSupport;

namespace Vpn.EndToEnd;

/// <summary>
/// entry's <c>migrate</c> init container, run as the overlay renders it: the built entry binary with exactly the
/// container's environment (its envFrom ConfigMap as rendered, then its env) and a file for every *_FILE setting on its
/// mounts, against a throwaway PostgreSQL. It must apply the migrations (exit 0): the shipped manifest gave migrate only
/// DATABASE_URL_FILE while the image says APP_ENV=production, and the production settings check stopped it (exit 2).
/// The secret files hold test values of the right shape; the mount paths are moved under a temporary directory.
/// </summary>
[Collection(nameof(ManifestMigrateTests))]
public sealed class ManifestMigrateTests
{
    // What the image itself sets (deploy/docker/entry.Dockerfile); the rendered env comes on top, as in the pod.
    private static readonly Dictionary<string, string> s_imageEnvironment = new(StringComparer.Ordinal) { ["APP_ENV"] = "production" };

    // Inherited variables of these families are blanked: the command must get its settings from the manifest alone.
    private static readonly string[] s_settingFamilies = ["APP_", "DATABASE_URL", "ADMIN_API_TOKEN", "GOOGLE_", "CORE_", "WG_"];

    [Theory]
    [InlineData("dev")]
    [InlineData("prod")]
    public async Task MigrateInitContainer_WithTheRenderedEnvironment_AppliesTheMigrations(string overlay)
    {
        Prerequisites.Require(File.Exists(RepoLayout.EntryDll), $"built entry at {RepoLayout.EntryDll}");
        var documents = await ManifestOverlays.RenderAsync(overlay);
        var pod = KubernetesManifests.Single(documents, "Deployment", "entry")["spec"]!["template"]!["spec"]!;
        var migrate = pod["initContainers"]!.AsArray().Single(c => (string?)c!["name"] == "migrate")!;
        Assert.Equal(["migrate"], migrate["args"]!.AsArray().Select(a => (string?)a));

        await using var postgres = await PostgresServer.StartNewAsync();
        var databaseUrl = PostgresServer.ToUrl(await postgres.CreateDatabaseAsync("manifest_migrate"));
        using var certificates = new TestCertificates();
        var root = Directory.CreateTempSubdirectory("vpn-migrate-mounts-").FullName;
        try
        {
            var environment = new Dictionary<string, string>(s_imageEnvironment, StringComparer.Ordinal);
            foreach (var source in migrate["envFrom"]?.AsArray() ?? [])
            {
                var name = (string)source!["configMapRef"]!["name"]!;
                var map = Assert.Single(documents, d => (string?)d["kind"] == "ConfigMap" && (string?)d["metadata"]!["name"] == name);
                foreach (var (key, value) in map["data"]!.AsObject())
                {
                    environment[key] = (string)value!;
                }
            }
            var mounts = migrate["volumeMounts"]!.AsArray().Select(m => (string)m!["mountPath"]!).ToList();
            foreach (var variable in migrate["env"]!.AsArray())
            {
                var name = (string)variable!["name"]!;
                var value = (string?)variable["value"];
                Assert.True(value is not null, $"{name}: only literal values are supported here");
                if (name.EndsWith("_FILE", StringComparison.Ordinal))
                {
                    var mount = Assert.Single(mounts, m => value.StartsWith(m.TrimEnd('/') + "/", StringComparison.Ordinal));
                    var local = Path.Combine(root, mount.Trim('/').Replace('/', '_'), value[(mount.TrimEnd('/').Length + 1)..]);
                    Directory.CreateDirectory(Path.GetDirectoryName(local)!);
                    await File.WriteAllTextAsync(local, FileContent(name[..^"_FILE".Length], databaseUrl, certificates), TestContext.Current.CancellationToken);
                    value = local;
                }
                environment[name] = value;
            }
            foreach (var inherited in System.Environment.GetEnvironmentVariables().Keys.Cast<string>())
            {
                if (s_settingFamilies.Any(f => inherited.StartsWith(f, StringComparison.Ordinal)) && !environment.ContainsKey(inherited))
                {
                    environment[inherited] = "";
                }
            }

            var result = await ProcessRunner.RunAsync("dotnet", [RepoLayout.EntryDll, "migrate"], timeout: TimeSpan.FromMinutes(2), environment: environment);

            var output = result.StandardOutput + result.StandardError;
            Assert.True(result.ExitCode == 0, $"migrate exited {result.ExitCode}:\n{output}");
            Assert.Contains("migration(s) applied", output, StringComparison.Ordinal);
            foreach (var secret in new[] { "manifest-test-admin-token", "manifest-test-jwt-secret", "manifest-test-google-secret" })
            {
                Assert.DoesNotContain(secret, output, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    // A value of the right shape for each secret a manifest names through *_FILE.
    private static string FileContent(string setting, string databaseUrl, TestCertificates certificates) => setting switch
    {
        "DATABASE_URL" => databaseUrl,
        "ADMIN_API_TOKEN" => "manifest-test-admin-token-0123456789abcdef",
        "APP_JWT_SIGNING_KEYS" => "2026-12:manifest-test-jwt-secret-0123456789abcdef",
        "GOOGLE_CLIENT_ID" => "manifest-test.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET" => "manifest-test-google-secret",
        "APP_LOG_REDACTION_KEY" => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        "APP_CORE_TLS_CA" => File.ReadAllText(certificates.Ca.CertificateFile),
        "APP_CORE_TLS_CLIENT_CERT" => File.ReadAllText(certificates.Client.CertificateFile),
        "APP_CORE_TLS_CLIENT_KEY" => File.ReadAllText(certificates.Client.KeyFile),
        _ => throw new InvalidOperationException($"The test does not know what goes in {setting}_FILE: add it here."),
    };
}
