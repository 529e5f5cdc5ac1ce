namespace Vpn.EndToEnd;

/// <summary>
/// What a reviewer checks in every rendered overlay (<see cref="ManifestPolicy"/>): resources and probes on every
/// container, numeric non-root users where a container can do without root, read-only roots, no privilege escalation
/// (one documented exception), NET_ADMIN for the node's dataplane only, settings files that are mounted, init containers
/// with the settings of the command they run, budgets that let a node drain, per-environment namespaces and selectors,
/// scrapeable core metrics, egress limited to what entry needs, production secrets from GCP Secret Manager only. Each
/// check also refuses a mutated overlay, so it can fail.
/// </summary>
public sealed class ManifestPolicyTests
{
    public static TheoryData<string> Overlays => [.. ManifestOverlays.All];

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Overlay_CompliesWithEveryPolicy(string overlay)
    {
        var documents = await ManifestOverlays.RenderAsync(overlay);
        var problems = ManifestPolicy.ResourcesAndProbes(documents)
            .Concat(ManifestPolicy.LeastPrivilege(documents))
            .Concat(ManifestPolicy.SettingsFiles(documents))
            .Concat(ManifestPolicy.Environment(documents, overlay))
            .Concat(ManifestPolicy.EntryEgress(documents))
            .Concat(ManifestPolicy.ImagesAndReferences(documents))
            .Concat(overlay == "dev" ? ManifestPolicy.DevSecrets(documents) : ManifestPolicy.ProdSecrets(documents))
            .ToList();
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public async Task DevAndProd_ShareNoNamespaceNoSelectorNoVpnNode()
    {
        var dev = await ManifestOverlays.RenderAsync("dev");
        var prod = await ManifestOverlays.RenderAsync("prod");
        string Namespace(List<JsonObject> d) => (string)KubernetesManifests.Single(d, "Deployment", "entry")["metadata"]!["namespace"]!;
        JsonNode Selector(List<JsonObject> d, string name) => KubernetesManifests.Single(d, "Deployment", name)["spec"]!["selector"]!;
        JsonNode Node(List<JsonObject> d) => KubernetesManifests.Single(d, "Deployment", "core-node")["spec"]!["template"]!["spec"]!["nodeSelector"]!;

        Assert.NotEqual(Namespace(dev), Namespace(prod));
        Assert.False(JsonNode.DeepEquals(Selector(dev, "entry"), Selector(prod, "entry")));
        Assert.False(JsonNode.DeepEquals(Selector(dev, "core-node"), Selector(prod, "core-node")));
        // Cores bind host ports: a dev core on a prod VPN node would fail or, worse, take the node's port.
        Assert.False(JsonNode.DeepEquals(Node(dev), Node(prod)));
    }

    public static TheoryData<string> Mutations => [.. s_mutations.Keys];

    [Theory]
    [MemberData(nameof(Mutations))]
    public async Task MutatedOverlay_Refused(string mutation)
    {
        var (overlay, mutate, check) = s_mutations[mutation];
        var documents = await ManifestOverlays.RenderAsync(overlay);
        Assert.Empty(check(documents, overlay));
        mutate(documents);

        var problems = check(documents, overlay);

        Assert.True(problems.Count > 0, $"The policy accepted {overlay} with {mutation}.");
        TestContext.Current.TestOutputHelper?.WriteLine($"{mutation}: {string.Join("; ", problems)}");
    }

    private delegate List<string> Check(List<JsonObject> documents, string overlay);

    private static readonly Check s_resources = (d, _) => ManifestPolicy.ResourcesAndProbes(d);
    private static readonly Check s_privilege = (d, _) => ManifestPolicy.LeastPrivilege(d);
    private static readonly Check s_settings = (d, _) => ManifestPolicy.SettingsFiles(d);
    private static readonly Check s_environment = ManifestPolicy.Environment;
    private static readonly Check s_egress = (d, _) => ManifestPolicy.EntryEgress(d);
    private static readonly Check s_prodSecrets = (d, _) => ManifestPolicy.ProdSecrets(d);
    private static readonly Check s_devSecrets = (d, _) => ManifestPolicy.DevSecrets(d);
    private static readonly Check s_references = (d, _) => ManifestPolicy.ImagesAndReferences(d);

    private static readonly Dictionary<string, (string Overlay, Action<List<JsonObject>> Mutate, Check Check)> s_mutations = new(StringComparer.Ordinal)
    {
        ["an init container without limits"] = ("prod", d => Container(d, "entry", "migrate").Remove("resources"), s_resources),
        ["core without a liveness probe"] = ("dev", d => Container(d, "core-node", "core").Remove("livenessProbe"), s_resources),
        ["entry adding NET_ADMIN"] = ("prod", d => Security(d, "entry", "entry")["capabilities"]!["add"] = new JsonArray("NET_ADMIN"), s_privilege),
        ["unbound adding NET_ADMIN"] = ("prod", d => Security(d, "core-node", "unbound")["capabilities"]!["add"]!.AsArray().Add("NET_ADMIN"), s_privilege),
        ["entry allowing privilege escalation"] = ("prod", d => Security(d, "entry", "entry")["allowPrivilegeEscalation"] = true, s_privilege),
        ["a writable root filesystem"] = ("dev", d => Security(d, "core-node", "resolver-config")["readOnlyRootFilesystem"] = false, s_privilege),
        ["entry without a numeric user"] = ("prod", d => PodSpec(d, "entry")["securityContext"]!.AsObject().Remove("runAsUser"), s_privilege),
        ["entry as the wrong user"] = ("dev", d => PodSpec(d, "entry")["securityContext"]!["runAsUser"] = 1000, s_privilege),
        ["core left to the image's user"] = ("prod", d => Security(d, "core-node", "core").Remove("runAsUser"), s_privilege),
        ["no seccomp profile on core's pod"] = ("prod", d => PodSpec(d, "core-node").Remove("securityContext"), s_privilege),
        ["migrate with DATABASE_URL_FILE only (the shipped bug)"] = ("prod", d => Container(d, "entry", "migrate")["env"] =
            new JsonArray(new JsonObject { ["name"] = "DATABASE_URL_FILE", ["value"] = "/var/run/secrets/vpn-db/uri" }), s_settings),
        ["migrate without entry's settings ConfigMap"] = ("dev", d => Container(d, "entry", "migrate").Remove("envFrom"), s_settings),
        ["a settings file on no volume"] = ("prod", d => Container(d, "entry", "entry")["env"]!.AsArray()
            .Add(new JsonObject { ["name"] = "APP_EXTRA_FILE", ["value"] = "/etc/extra" }), s_settings),
        ["resolver-config out of step with core"] = ("prod", d => Container(d, "core-node", "core")["env"]!.AsArray()
            .Add(new JsonObject { ["name"] = "WG_NAT_DRIVER_EXTRA", ["value"] = "x" }), s_settings),
        ["a budget of minAvailable 1 at one replica"] = ("dev", d =>
        {
            var spec = Document(d, "PodDisruptionBudget", "entry")["spec"]!.AsObject();
            spec.Remove("maxUnavailable");
            spec["minAvailable"] = 1;
        }, s_environment),
        ["entry selecting another environment's pods"] = ("dev", d => Document(d, "Deployment", "entry")["spec"]!["selector"]!["matchLabels"]!.AsObject()
            .Remove("app.kubernetes.io/instance"), s_environment),
        ["a document in the shared namespace"] = ("dev", d => Document(d, "Service", "entry")["metadata"]!["namespace"] = "vpn", s_environment),
        ["core metrics on loopback"] = ("prod", d => Container(d, "core-node", "core")["env"]!.AsArray()
            .Single(e => (string?)e!["name"] == "CORE_METRICS_LISTEN")!["value"] = "127.0.0.1:9464", s_environment),
        ["core not announced for scraping"] = ("prod", d => Document(d, "Deployment", "core-node")["spec"]!["template"]!["metadata"]!.AsObject().Remove("annotations"), s_environment),
        ["an egress rule to every port"] = ("prod", d => Document(d, "NetworkPolicy", "entry")["spec"]!["egress"]!.AsArray()
            .Add(new JsonObject { ["to"] = new JsonArray(new JsonObject { ["ipBlock"] = new JsonObject { ["cidr"] = "0.0.0.0/0" } }) }), s_egress),
        ["no egress restriction"] = ("dev", d => Document(d, "NetworkPolicy", "entry")["spec"]!["policyTypes"] = new JsonArray("Ingress"), s_egress),
        ["a prod secret from a Kubernetes Secret"] = ("prod", d =>
        {
            var volume = PodSpec(d, "core-node")["volumes"]!.AsArray().Single(v => (string?)v!["name"] == "core-tls")!.AsObject();
            volume.Remove("csi");
            volume["secret"] = new JsonObject { ["secretName"] = "core-tls" };
        }, s_prodSecrets),
        ["a canary SecretProviderClass of another provider"] = ("prod-native-canary", d => Document(d, "SecretProviderClass", "wireguard-keys")["spec"]!["provider"] = "vault", s_prodSecrets),
        ["an image left unpinned"] = ("prod", d => Container(d, "core-node", "unbound")["image"] = "registry.example.net/vpn/unbound:latest", s_references),
        ["a base image name left unresolved"] = ("dev", d => Container(d, "entry", "migrate")["image"] = "vpn-entry", s_references),
        ["a Service selecting no pod"] = ("prod", d => Document(d, "Service", "entry")["spec"]!["selector"]!["app.kubernetes.io/name"] = "entry-v2", s_references),
        ["an autoscaler of a missing Deployment"] = ("prod", d => Document(d, "HorizontalPodAutoscaler", "entry")["spec"]!["scaleTargetRef"]!["name"] = "api", s_references),
        ["a dev secret sealed nowhere"] = ("dev", d => d.Remove(Document(d, "SealedSecret", "wireguard-keys")), s_devSecrets),
    };

    private static JsonObject Document(List<JsonObject> documents, string kind, string name) => KubernetesManifests.Single(documents, kind, name);

    private static JsonObject PodSpec(List<JsonObject> documents, string workload) =>
        Document(documents, "Deployment", workload)["spec"]!["template"]!["spec"]!.AsObject();

    private static JsonObject Container(List<JsonObject> documents, string workload, string name)
    {
        var spec = PodSpec(documents, workload);
        return (spec["initContainers"]?.AsArray() ?? []).Concat(spec["containers"]!.AsArray()).Single(c => (string?)c!["name"] == name)!.AsObject();
    }

    private static JsonObject Security(List<JsonObject> documents, string workload, string name) =>
        Container(documents, workload, name)["securityContext"]!.AsObject();
}
