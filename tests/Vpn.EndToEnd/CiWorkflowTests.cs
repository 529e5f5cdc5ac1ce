using YamlDotNet.RepresentationModel;

namespace Vpn.EndToEnd;

/// <summary>
/// .github/workflows/ci.yaml cannot run here; what can be checked is checked: it is valid YAML of the shape GitHub
/// reads, one job runs <c>bash .ci/run</c> as root on Debian 12, and another renders every overlay there is and runs the
/// manifest tests. Every overlay directory is one the manifest tests know, so a new overlay cannot go unvalidated.
/// </summary>
public sealed class CiWorkflowTests
{
    private static readonly string Workflow = Path.Combine(RepoLayout.Root, ".github", "workflows", "ci.yaml");

    [Fact]
    public void Workflow_RunsCiScriptOnDebianAsRoot_AndRendersAndValidatesEveryOverlay()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Workflow)));
        var root = (YamlMappingNode)Assert.Single(stream.Documents).RootNode;
        Assert.Equal("ci", Scalar(root, "name"));
        Assert.True(root.Children.ContainsKey("on"), "no triggers");
        var jobs = (YamlMappingNode)root["jobs"];

        foreach (var (_, node) in jobs.Children)
        {
            var job = (YamlMappingNode)node;
            Assert.False(string.IsNullOrEmpty(Scalar(job, "runs-on")), "a job without runs-on");
            foreach (var step in ((YamlSequenceNode)job["steps"]).Cast<YamlMappingNode>())
            {
                var uses = step.Children.TryGetValue("uses", out var u) ? ((YamlScalarNode)u).Value : null;
                var run = step.Children.TryGetValue("run", out var r) ? ((YamlScalarNode)r).Value : null;
                Assert.True(uses is not null ^ run is not null, "a step needs exactly one of uses and run");
                Assert.True(uses is null || uses.Contains('@', StringComparison.Ordinal), $"{uses}: not pinned to a version");
            }
        }

        var test = (YamlMappingNode)jobs["test"];
        Assert.Equal("debian:12", Scalar((YamlMappingNode)test["container"], "image"));
        Assert.Contains(Runs(test), r => r.Trim() == "bash .ci/run");

        var manifests = string.Join('\n', Runs((YamlMappingNode)jobs["manifests"]));
        Assert.Contains("kubectl kustomize", manifests, StringComparison.Ordinal);
        foreach (var overlay in ManifestOverlays.All)
        {
            Assert.Contains(overlay, manifests, StringComparison.Ordinal);
        }
        foreach (var suite in new[] { "ManifestSchemaTests", "ManifestPolicyTests", "DeployManifestTests" })
        {
            Assert.Contains(suite, manifests, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void EveryOverlayDirectory_IsValidatedByTheManifestTests()
    {
        var directories = Directory.GetDirectories(Path.Combine(RepoLayout.Root, "deploy", "k8s", "overlays")).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(ManifestOverlays.All.Order(StringComparer.Ordinal), directories);
    }

    private static string? Scalar(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(key, out var node) ? (node as YamlScalarNode)?.Value : null;

    private static IEnumerable<string> Runs(YamlMappingNode job) =>
        ((YamlSequenceNode)job["steps"]).Cast<YamlMappingNode>().Select(s => Scalar(s, "run")).OfType<string>();
}
