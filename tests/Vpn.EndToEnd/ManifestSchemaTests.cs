namespace Vpn.EndToEnd;

/// <summary>
/// Every document of every overlay, as <c>kubectl kustomize</c> renders it, is valid against the Kubernetes schemas
/// and the CRDs vendored in deploy/k8s/schemas, judged as the API server's strict field validation would
/// (<see cref="KubernetesSchemas"/>). Mutated copies (a misspelt field, a wrong type, a missing required field) must be
/// refused, so the validation can fail.
/// </summary>
public sealed class ManifestSchemaTests
{
    public static TheoryData<string> Overlays => [.. ManifestOverlays.All];

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Overlay_EveryDocument_ValidAgainstItsSchema(string overlay)
    {
        var documents = await ManifestOverlays.RenderAsync(overlay);

        Assert.NotEmpty(documents);
        var problems = documents.Select(d => (Document: d, Errors: KubernetesSchemas.Validate(d)))
            .Where(r => r.Errors is not null)
            .Select(r => $"{r.Document["kind"]} {r.Document["metadata"]?["name"]}:\n{r.Errors}")
            .ToList();
        Assert.True(problems.Count == 0, string.Join("\n\n", problems));
        TestContext.Current.TestOutputHelper?.WriteLine($"{overlay}: {documents.Count} documents valid: "
            + string.Join(", ", documents.Select(d => $"{d["kind"]}/{d["metadata"]?["name"]}")));
    }

    [Theory]
    [InlineData("a misspelt container field", "Deployment", "entry", "/spec/template/spec/containers/0/readinessprobe", "{}")]
    [InlineData("replicas as a string", "Deployment", "entry", "/spec/replicas", "\"3\"")]
    [InlineData("a container without a name", "Deployment", "entry", "/spec/template/spec/containers/0/name", null)]
    [InlineData("an unknown securityContext field", "Deployment", "core-node", "/spec/template/spec/containers/0/securityContext/privileged2", "false")]
    [InlineData("a port as an object", "Service", "entry", "/spec/ports/0/port", "{}")]
    [InlineData("an unknown PodDisruptionBudget field", "PodDisruptionBudget", "entry", "/spec/maxUnavailabel", "1")]
    [InlineData("an HPA metric target of the wrong type", "HorizontalPodAutoscaler", "entry", "/spec/metrics/0/resource/target/averageUtilization", "\"70%\"")]
    [InlineData("an unknown NetworkPolicy field", "NetworkPolicy", "entry", "/spec/egres", "[]")]
    [InlineData("an unknown metadata field", "ConfigMap", null, "/metadata/label", "{}")]
    [InlineData("a SecretProviderClass parameter that is not a string", "SecretProviderClass", "entry-secrets", "/spec/parameters/secrets", "[]")]
    [InlineData("an unknown SecretProviderClass field", "SecretProviderClass", "entry-secrets", "/spec/providers", "\"gcp\"")]
    public async Task ProdOverlay_MutatedDocument_Refused(string mutation, string kind, string? name, string path, string? json)
    {
        var documents = await ManifestOverlays.RenderAsync("prod");
        var document = Assert.Single(documents, d => (string?)d["kind"] == kind
            && (name is null ? ((string?)d["metadata"]!["name"])!.StartsWith("entry-settings", StringComparison.Ordinal) : (string?)d["metadata"]!["name"] == name));
        var copy = document.DeepClone().AsObject();
        Assert.Null(KubernetesSchemas.Validate(copy));
        var segments = path.Trim('/').Split('/');
        var parent = segments[..^1].Aggregate((JsonNode)copy, (node, segment) => int.TryParse(segment, out var i) ? node[i]! : node[segment]!);
        if (json is null)
        {
            parent.AsObject().Remove(segments[^1]);
        }
        else
        {
            parent[segments[^1]] = JsonNode.Parse(json);
        }

        var errors = KubernetesSchemas.Validate(copy);

        Assert.True(errors is not null, $"The schema accepted a {kind} with {mutation}.");
        TestContext.Current.TestOutputHelper?.WriteLine($"{mutation}: {errors}");
    }

    [Fact]
    public void UnknownKind_Fails()
    {
        var document = new JsonObject { ["apiVersion"] = "example.net/v1", ["kind"] = "Gadget", ["metadata"] = new JsonObject { ["name"] = "x" } };
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => KubernetesSchemas.Validate(document));
    }
}
