using System.Text.RegularExpressions;

namespace Vpn.EndToEnd;

/// <summary>
/// The overlays agree with each other and with their documentation: the canary is production with only core's NAT
/// driver and image changed, and every Secret Manager secret and file the prod SecretProviderClasses mount is in
/// docs/deployment-checklist.md's secrets table (what an operator creates).
/// </summary>
public sealed partial class ManifestConsistencyTests
{
    [Fact]
    public async Task Canary_IsProd_WithOnlyCoresNatDriverAndImageChanged()
    {
        var prod = await ManifestOverlays.RenderAsync("prod");
        var canary = await ManifestOverlays.RenderAsync("prod-native-canary");
        static string Key(JsonObject d) => $"{d["kind"]}/{d["metadata"]!["name"]}";
        Assert.Equal(prod.Select(Key).Order(StringComparer.Ordinal), canary.Select(Key).Order(StringComparer.Ordinal));

        foreach (var document in canary.Where(d => Key(d) != "Deployment/core-node"))
        {
            Assert.True(JsonNode.DeepEquals(document, prod.Single(p => Key(p) == Key(document))), $"{Key(document)} differs from prod");
        }
        var node = KubernetesManifests.Single(canary, "Deployment", "core-node");
        var template = node["spec"]!["template"]!;
        Assert.Equal("native", (string?)template["metadata"]!["labels"]!.AsObject()["vpn.example.net/nat-driver"]);
        template["metadata"]!["labels"]!.AsObject().Remove("vpn.example.net/nat-driver");
        foreach (var name in new[] { "core", "resolver-config" })
        {
            var container = Containers(template["spec"]!).Single(c => (string?)c["name"] == name);
            Assert.Equal("registry.example.net/vpn/core:1.0.0-native-canary", (string?)container["image"]);
            container["image"] = "registry.example.net/vpn/core:1.0.0";
            var driver = container["env"]!.AsArray().Single(e => (string?)e!["name"] == "WG_NAT_DRIVER")!;
            Assert.Equal("native", (string?)driver["value"]);
            driver["value"] = "cli";
        }
        Assert.True(JsonNode.DeepEquals(Normalized(node), Normalized(KubernetesManifests.Single(prod, "Deployment", "core-node"))),
            "the canary's core-node differs from prod's in more than the NAT driver and core's image");
    }

    [Fact]
    public async Task ProdSecretProviderClasses_EverySecretAndFile_InTheChecklist()
    {
        var checklist = await File.ReadAllTextAsync(Path.Combine(RepoLayout.Root, "docs", "deployment-checklist.md"), TestContext.Current.CancellationToken);
        var documents = await ManifestOverlays.RenderAsync("prod");
        var classes = documents.Where(d => (string?)d["kind"] == "SecretProviderClass").ToList();
        Assert.NotEmpty(classes);
        foreach (var secretClass in classes)
        {
            var name = (string)secretClass["metadata"]!["name"]!;
            Assert.Contains($"`{name}`", checklist, StringComparison.Ordinal);
            var parameters = (string)secretClass["spec"]!["parameters"]!["secrets"]!;
            var entries = SecretEntry().Matches(parameters);
            Assert.NotEmpty(entries);
            foreach (Match entry in entries)
            {
                Assert.Contains($"`{entry.Groups["secret"].Value}`", checklist, StringComparison.Ordinal);
                Assert.Contains($"`{entry.Groups["path"].Value}`", checklist, StringComparison.Ordinal);
            }
        }
    }

    [GeneratedRegex(@"resourceName: projects/[^/\s]+/secrets/(?<secret>[^/\s]+)/versions/\S+\s+path: (?<path>\S+)")]
    private static partial Regex SecretEntry();

    private static IEnumerable<JsonObject> Containers(JsonNode spec) =>
        (spec["initContainers"]?.AsArray() ?? []).Concat(spec["containers"]!.AsArray()).Select(c => c!.AsObject());

    // Containers and env in name order (a strategic merge patch may reorder both; the pod means the same).
    private static JsonObject Normalized(JsonObject deployment)
    {
        var copy = deployment.DeepClone().AsObject();
        var spec = copy["spec"]!["template"]!["spec"]!.AsObject();
        foreach (var list in new[] { "containers", "initContainers" })
        {
            var sorted = spec[list]!.AsArray().Select(c => c!.DeepClone().AsObject()).OrderBy(c => (string?)c["name"], StringComparer.Ordinal).ToList();
            foreach (var container in sorted.Where(c => c["env"] is not null))
            {
                container["env"] = new JsonArray([.. container["env"]!.AsArray().Select(e => e!.DeepClone()).OrderBy(e => (string?)e["name"], StringComparer.Ordinal)]);
            }
            spec[list] = new JsonArray([.. sorted]);
        }
        return copy;
    }
}
