namespace Vpn.EndToEnd;

/// <summary>
/// What a reviewer checks in every rendered overlay, as tests: resources and probes on every container, numeric
/// non-root users where a container can do without root, read-only roots, no privilege escalation (one documented
/// exception), NET_ADMIN for the node's dataplane only, settings files that are mounted, init containers with the
/// settings of the command they run, budgets that let a node drain, per-environment namespaces and selectors, scrapeable
/// metrics, egress limited to what entry needs, and production secrets from GCP Secret Manager only.
/// The privileges are the ones deploy/k8s/base/core-node.yaml explains container by container.
/// </summary>
public sealed class ManifestPolicyTests
{
    public static TheoryData<string> Overlays => [.. ManifestOverlays.All];

    // Containers that need root: a capability the pod grants is effective only for uid 0 (no ambient capabilities).
    private static readonly HashSet<string> s_rootDataplane = ["core-node/core", "core-node/wireguard-go"];

    // uid/gid of the images: entry's and core's own user 10001, unbound's 10053.
    private static readonly Dictionary<string, int> s_users = new(StringComparer.Ordinal)
    {
        ["entry/migrate"] = 10001, ["entry/entry"] = 10001, ["core-node/resolver-config"] = 10001, ["core-node/unbound"] = 10053,
    };

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryContainer_HasRequestsLimitsAndProbes(string overlay)
    {
        var problems = new List<string>();
        foreach (var (workload, container, init) in Containers(await ManifestOverlays.RenderAsync(overlay)))
        {
            var name = $"{workload}/{container["name"]}";
            var resources = container["resources"];
            foreach (var (section, resource) in new[] { ("requests", "cpu"), ("requests", "memory"), ("limits", "memory") })
            {
                if (resources?[section]?[resource] is null)
                {
                    problems.Add($"{name}: no {section}.{resource}");
                }
            }
            if (!init && (container["readinessProbe"] is null || container["livenessProbe"] is null))
            {
                problems.Add($"{name}: needs a readiness and a liveness probe");
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryContainer_LeastPrivilege(string overlay)
    {
        var documents = await ManifestOverlays.RenderAsync(overlay);
        var problems = new List<string>();
        foreach (var pod in Pods(documents))
        {
            var spec = pod.Spec;
            if ((string?)spec["securityContext"]?["seccompProfile"]?["type"] != "RuntimeDefault")
            {
                problems.Add($"{pod.Name}: pod seccompProfile is not RuntimeDefault");
            }
            if ((bool?)spec["automountServiceAccountToken"] != false)
            {
                problems.Add($"{pod.Name}: mounts a service account token");
            }
            if ((bool?)spec["hostNetwork"] == true && pod.Name != "core-node")
            {
                problems.Add($"{pod.Name}: host network");
            }
            if ((bool?)spec["hostPID"] == true || (bool?)spec["hostIPC"] == true)
            {
                problems.Add($"{pod.Name}: host PID/IPC");
            }
        }
        foreach (var (workload, container, _) in Containers(documents))
        {
            var name = $"{workload}/{container["name"]}";
            var pod = Pods(documents).Single(p => p.Name == workload).Spec["securityContext"];
            var own = container["securityContext"];
            JsonNode? Effective(string field) => own?[field] ?? pod?[field];
            if ((bool?)own?["privileged"] == true)
            {
                problems.Add($"{name}: privileged");
            }
            if ((bool?)own?["readOnlyRootFilesystem"] != true)
            {
                problems.Add($"{name}: root filesystem not read-only");
            }
            var drop = own?["capabilities"]?["drop"]?.AsArray().Select(c => (string?)c).ToList() ?? [];
            var add = own?["capabilities"]?["add"]?.AsArray().Select(c => (string?)c).ToList() ?? [];
            if (!drop.Contains("ALL"))
            {
                problems.Add($"{name}: does not drop ALL capabilities");
            }
            string[] allowed = s_rootDataplane.Contains(name) ? ["NET_ADMIN"] : name == "core-node/unbound" ? ["NET_BIND_SERVICE"] : [];
            if (!add.All(c => allowed.Contains(c)))
            {
                problems.Add($"{name}: adds {string.Join(',', add)}; may add only [{string.Join(',', allowed)}]");
            }
            // The one exception, documented in core-node.yaml: unbound's port 53 comes from a file capability, which
            // no_new_privs would void; its bounding set is NET_BIND_SERVICE alone.
            var escalation = (bool?)own?["allowPrivilegeEscalation"];
            if (escalation != false && !(name == "core-node/unbound" && add.SequenceEqual(["NET_BIND_SERVICE"])))
            {
                problems.Add($"{name}: allowPrivilegeEscalation is not false");
            }
            var user = (int?)Effective("runAsUser");
            if (s_rootDataplane.Contains(name))
            {
                // Root, and said so explicitly rather than left to the image.
                if (user != 0 || (bool?)Effective("runAsNonRoot") != false)
                {
                    problems.Add($"{name}: must state runAsUser 0 and runAsNonRoot false (it needs root for NET_ADMIN)");
                }
                continue;
            }
            if ((bool?)Effective("runAsNonRoot") != true || user is null or 0)
            {
                problems.Add($"{name}: needs runAsNonRoot with a numeric non-zero runAsUser");
            }
            else if (s_users.TryGetValue(name, out var expected) && user != expected)
            {
                problems.Add($"{name}: runs as {user}, the image's user is {expected}");
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryContainer_SettingsFilesMounted_InitContainersHaveTheirCommandsSettings(string overlay)
    {
        var documents = await ManifestOverlays.RenderAsync(overlay);
        var problems = new List<string>();
        foreach (var (workload, container, _) in Containers(documents))
        {
            var name = $"{workload}/{container["name"]}";
            var mounts = container["volumeMounts"]?.AsArray().Select(m => (string)m!["mountPath"]!).ToList() ?? [];
            foreach (var variable in container["env"]?.AsArray() ?? [])
            {
                if (((string)variable!["name"]!).EndsWith("_FILE", StringComparison.Ordinal) && (string?)variable["value"] is { } path
                    && !mounts.Any(m => path.StartsWith(m.TrimEnd('/') + "/", StringComparison.Ordinal)))
                {
                    problems.Add($"{name}: {variable["name"]}={path} is on no mounted volume");
                }
            }
        }
        // migrate runs in entry's image (APP_ENV=production) and checks entry's settings: it gets exactly entry's
        // settings and files, so whatever it validates entry passes, and the reverse.
        var entry = Pods(documents).Single(p => p.Name == "entry").Spec;
        var migrate = entry["initContainers"]!.AsArray().Single(c => (string?)c!["name"] == "migrate")!;
        var server = entry["containers"]!.AsArray().Single(c => (string?)c!["name"] == "entry")!;
        Assert.Equal(["migrate"], migrate["args"]!.AsArray().Select(a => (string?)a));
        foreach (var field in new[] { "env", "envFrom", "volumeMounts" })
        {
            if (!JsonNode.DeepEquals(migrate[field], server[field]))
            {
                problems.Add($"entry/migrate: {field} differs from entry's");
            }
        }
        // resolver-config validates core's settings: the same env and core's secret mounts.
        var core = Pods(documents).Single(p => p.Name == "core-node").Spec;
        var resolver = core["initContainers"]!.AsArray().Single(c => (string?)c!["name"] == "resolver-config")!;
        var agent = core["containers"]!.AsArray().Single(c => (string?)c!["name"] == "core")!;
        if (!JsonNode.DeepEquals(resolver["env"], agent["env"]))
        {
            problems.Add("core-node/resolver-config: env differs from core's");
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Workloads_DrainableScrapeableAndSelectedInTheirOwnEnvironment(string overlay)
    {
        var documents = await ManifestOverlays.RenderAsync(overlay);
        var instance = overlay == "dev" ? "dev" : "prod";
        var expectedNamespace = overlay == "dev" ? "vpn-dev" : "vpn";
        var problems = new List<string>();
        Assert.Equal(expectedNamespace, (string?)KubernetesManifests.Single(documents, "Namespace", expectedNamespace)["metadata"]!["name"]);
        foreach (var document in documents.Where(d => (string?)d["kind"] != "Namespace"))
        {
            if ((string?)document["metadata"]!["namespace"] != expectedNamespace)
            {
                problems.Add($"{document["kind"]} {document["metadata"]!["name"]}: not in namespace {expectedNamespace}");
            }
        }
        foreach (var document in documents)
        {
            var selector = (string?)document["kind"] switch
            {
                "Deployment" or "PodDisruptionBudget" => document["spec"]!["selector"]!["matchLabels"],
                "Service" => document["spec"]!["selector"],
                "NetworkPolicy" => document["spec"]!["podSelector"]!["matchLabels"],
                _ => null,
            };
            if (selector is not null && (string?)selector["app.kubernetes.io/instance"] != instance)
            {
                problems.Add($"{document["kind"]} {document["metadata"]!["name"]}: selector without app.kubernetes.io/instance={instance}");
            }
        }
        // A drain may always evict one entry pod.
        var budget = KubernetesManifests.Single(documents, "PodDisruptionBudget", "entry");
        var deployment = KubernetesManifests.Single(documents, "Deployment", "entry");
        var autoscaler = documents.SingleOrDefault(d => (string?)d["kind"] == "HorizontalPodAutoscaler");
        var fewest = autoscaler is not null ? (int)autoscaler["spec"]!["minReplicas"]! : (int)deployment["spec"]!["replicas"]!;
        var drainable = budget["spec"]!["maxUnavailable"] is JsonValue max ? (int)max >= 1 : (int)budget["spec"]!["minAvailable"]! < fewest;
        if (!drainable)
        {
            problems.Add($"PodDisruptionBudget entry blocks drains at {fewest} replica(s)");
        }
        // Core's metrics and probes on the node's address (host network: 127.0.0.1 is unreachable for Prometheus).
        var core = Pods(documents).Single(p => p.Name == "core-node");
        var agent = core.Spec["containers"]!.AsArray().Single(c => (string?)c!["name"] == "core")!;
        var env = agent["env"]!.AsArray().Select(e => e!).ToList();
        var hostIp = env.FindIndex(e => (string?)e["name"] == "HOST_IP");
        var listen = env.FindIndex(e => (string?)e["name"] == "CORE_METRICS_LISTEN");
        Assert.True(hostIp >= 0 && listen > hostIp, "CORE_METRICS_LISTEN must follow HOST_IP (a $(VAR) sees only earlier variables)");
        Assert.Equal("status.hostIP", (string?)env[hostIp]["valueFrom"]!["fieldRef"]!["fieldPath"]);
        Assert.Equal("$(HOST_IP):9464", (string?)env[listen]["value"]);
        Assert.Equal("9464", (string?)core.Template["metadata"]!["annotations"]!["prometheus.io/port"]);
        Assert.Equal("true", (string?)core.Template["metadata"]!["annotations"]!["prometheus.io/scrape"]);
        Assert.Equal("/readyz", (string?)agent["readinessProbe"]!["httpGet"]!["path"]);
        Assert.Equal("/healthz", (string?)agent["livenessProbe"]!["httpGet"]!["path"]);
        Assert.Contains(agent["ports"]!.AsArray(), p => (string?)p!["name"] == "metrics" && (int)p["containerPort"]! == 9464);
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EntryEgress_OnlyDnsPostgresCoresAndHttps(string overlay)
    {
        var policy = KubernetesManifests.Single(await ManifestOverlays.RenderAsync(overlay), "NetworkPolicy", "entry");
        Assert.Contains("Egress", policy["spec"]!["policyTypes"]!.AsArray().Select(t => (string?)t));
        var rules = policy["spec"]!["egress"]!.AsArray();
        Assert.All(rules, rule => Assert.NotEmpty(rule!["ports"]?.AsArray() ?? []));
        var ports = rules.SelectMany(r => r!["ports"]!.AsArray()).Select(p => (int)p!["port"]!).ToHashSet();
        Assert.Subset(new HashSet<int> { 53, 5432, 50051, 443 }, ports);
        Assert.Superset(new HashSet<int> { 53, 5432, 50051, 443 }, ports);
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

    [Theory]
    [InlineData("prod")]
    [InlineData("prod-native-canary")]
    public async Task Prod_EverySecretFromGcpSecretManager_ButTheOperatorsDatabaseSecret(string overlay)
    {
        var documents = await ManifestOverlays.RenderAsync(overlay);
        var classes = documents.Where(d => (string?)d["kind"] == "SecretProviderClass").ToDictionary(d => (string)d["metadata"]!["name"]!);
        Assert.All(classes.Values, c => Assert.Equal("gcp", (string?)c["spec"]!["provider"]));
        var problems = new List<string>();
        foreach (var pod in Pods(documents))
        {
            foreach (var volume in pod.Spec["volumes"]?.AsArray() ?? [])
            {
                var name = $"{pod.Name}/{volume!["name"]}";
                if (volume["secret"] is { } secret && (string?)secret["secretName"] != "vpn-db-app")
                {
                    problems.Add($"{name}: a Kubernetes Secret ({secret["secretName"]}), not GCP Secret Manager");
                }
                if (volume["csi"] is { } csi && ((string?)csi["driver"] != "secrets-store.csi.k8s.io"
                    || !classes.ContainsKey((string?)csi["volumeAttributes"]?["secretProviderClass"] ?? "")))
                {
                    problems.Add($"{name}: CSI volume without a SecretProviderClass of this overlay");
                }
            }
        }
        Assert.Equal(["core-grpc-client-tls", "core-tls", "entry-secrets", "wireguard-keys"], classes.Keys.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(documents, d => (string?)d["kind"] is "Secret" or "SealedSecret");
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public async Task Dev_EverySecretVolume_SealedInTheOverlay()
    {
        var documents = await ManifestOverlays.RenderAsync("dev");
        var sealedNames = documents.Where(d => (string?)d["kind"] == "SealedSecret").Select(d => (string)d["metadata"]!["name"]!).ToHashSet();
        var mounted = Pods(documents).SelectMany(p => p.Spec["volumes"]!.AsArray())
            .Select(v => (string?)v!["secret"]?["secretName"]).OfType<string>().ToHashSet();
        Assert.Equal(["core-grpc-client-tls", "core-tls", "entry-secrets", "wireguard-keys"], mounted.Order(StringComparer.Ordinal));
        Assert.Superset(mounted, sealedNames);
    }

    private sealed record Pod(string Name, JsonObject Template, JsonObject Spec);

    private static IEnumerable<Pod> Pods(IEnumerable<JsonObject> documents) =>
        documents.Where(d => (string?)d["kind"] is "Deployment" or "DaemonSet" or "Job")
            .Select(d => new Pod((string)d["metadata"]!["name"]!, d["spec"]!["template"]!.AsObject(), d["spec"]!["template"]!["spec"]!.AsObject()));

    private static IEnumerable<(string Workload, JsonObject Container, bool Init)> Containers(IEnumerable<JsonObject> documents) =>
        Pods(documents).SelectMany(p =>
            (p.Spec["initContainers"]?.AsArray() ?? []).Select(c => (p.Name, c!.AsObject(), true))
            .Concat((p.Spec["containers"]?.AsArray() ?? []).Select(c => (p.Name, c!.AsObject(), false))));
}
