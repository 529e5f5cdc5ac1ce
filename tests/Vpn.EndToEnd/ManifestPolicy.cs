namespace Vpn.EndToEnd;

/// <summary>
/// The policy checks of <see cref="ManifestPolicyTests"/> over one overlay's rendered documents, each returning its
/// problems (empty: the overlay complies), so the tests can also show that a mutated overlay is caught. The privileges
/// are the ones deploy/k8s/base/core-node.yaml explains container by container.
/// </summary>
internal static class ManifestPolicy
{
    // Containers that need root: a capability the pod grants is effective only for uid 0 (no ambient capabilities).
    private static readonly HashSet<string> s_rootDataplane = ["core-node/core", "core-node/wireguard-go"];

    // uid of the images: entry's and core's own user 10001, unbound's 10053.
    private static readonly Dictionary<string, int> s_users = new(StringComparer.Ordinal)
    {
        ["entry/migrate"] = 10001, ["entry/entry"] = 10001, ["core-node/resolver-config"] = 10001, ["core-node/unbound"] = 10053,
    };

    public static readonly string[] Secrets = ["core-grpc-client-tls", "core-tls", "entry-secrets", "wireguard-keys"];

    public sealed record Pod(string Name, JsonObject Template, JsonObject Spec);

    public static List<string> ResourcesAndProbes(List<JsonObject> documents)
    {
        var problems = new List<string>();
        foreach (var (name, container, init) in Containers(documents))
        {
            foreach (var (section, resource) in new[] { ("requests", "cpu"), ("requests", "memory"), ("limits", "memory") })
            {
                if (container["resources"]?[section]?[resource] is null)
                {
                    problems.Add($"{name}: no {section}.{resource}");
                }
            }
            if (!init && (container["readinessProbe"] is null || container["livenessProbe"] is null))
            {
                problems.Add($"{name}: needs a readiness and a liveness probe");
            }
        }
        return problems;
    }

    public static List<string> LeastPrivilege(List<JsonObject> documents)
    {
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
        foreach (var (name, container, _) in Containers(documents))
        {
            var pod = Pods(documents).Single(p => name.StartsWith(p.Name + "/", StringComparison.Ordinal)).Spec["securityContext"];
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
            if ((bool?)own?["allowPrivilegeEscalation"] != false && !(name == "core-node/unbound" && add.SequenceEqual(["NET_BIND_SERVICE"])))
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
            }
            else if ((bool?)Effective("runAsNonRoot") != true || user is null or 0)
            {
                problems.Add($"{name}: needs runAsNonRoot with a numeric non-zero runAsUser");
            }
            else if (s_users.TryGetValue(name, out var expected) && user != expected)
            {
                problems.Add($"{name}: runs as {user}, the image's user is {expected}");
            }
        }
        return problems;
    }

    /// <summary>
    /// Every *_FILE setting names a file on a mounted volume, and each init container has the settings of the command it
    /// runs: migrate (entry's image, APP_ENV=production) exactly entry's env, envFrom and mounts, so whatever it
    /// validates entry passes too; resolver-config exactly core's env.
    /// </summary>
    public static List<string> SettingsFiles(List<JsonObject> documents)
    {
        var problems = new List<string>();
        foreach (var (name, container, _) in Containers(documents))
        {
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
        var volumes = Pods(documents).ToDictionary(p => p.Name, p => p.Spec["volumes"]?.AsArray().Select(v => (string)v!["name"]!).ToHashSet() ?? []);
        foreach (var (name, container, _) in Containers(documents))
        {
            foreach (var mount in container["volumeMounts"]?.AsArray() ?? [])
            {
                if (!volumes[name.Split('/')[0]].Contains((string)mount!["name"]!))
                {
                    problems.Add($"{name}: mounts {mount["name"]}, which the pod does not have");
                }
            }
        }
        var entry = Pods(documents).Single(p => p.Name == "entry").Spec;
        var migrate = entry["initContainers"]?.AsArray().SingleOrDefault(c => (string?)c!["name"] == "migrate");
        var server = entry["containers"]!.AsArray().Single(c => (string?)c!["name"] == "entry")!;
        if (migrate is null || !JsonNode.DeepEquals(migrate["args"], new JsonArray("migrate")))
        {
            problems.Add("entry: no migrate init container");
        }
        else
        {
            foreach (var field in new[] { "env", "envFrom", "volumeMounts" })
            {
                if (!JsonNode.DeepEquals(migrate[field], server[field]))
                {
                    problems.Add($"entry/migrate: {field} differs from entry's");
                }
            }
        }
        var core = Pods(documents).Single(p => p.Name == "core-node").Spec;
        var resolver = core["initContainers"]!.AsArray().Single(c => (string?)c!["name"] == "resolver-config")!;
        var agent = core["containers"]!.AsArray().Single(c => (string?)c!["name"] == "core")!;
        if (!JsonNode.DeepEquals(resolver["env"], agent["env"]))
        {
            problems.Add("core-node/resolver-config: env differs from core's");
        }
        return problems;
    }

    /// <summary>
    /// The overlay's own namespace on every document and its instance label in every selector; an entry budget that
    /// lets a drain evict a pod; core's metrics and probes on the node's address, announced for scraping.
    /// </summary>
    public static List<string> Environment(List<JsonObject> documents, string overlay)
    {
        var instance = overlay == "dev" ? "dev" : "prod";
        var expectedNamespace = overlay == "dev" ? "vpn-dev" : "vpn";
        var problems = new List<string>();
        if (!documents.Any(d => (string?)d["kind"] == "Namespace" && (string?)d["metadata"]!["name"] == expectedNamespace))
        {
            problems.Add($"no Namespace {expectedNamespace}");
        }
        foreach (var document in documents.Where(d => (string?)d["kind"] != "Namespace"))
        {
            var name = $"{document["kind"]} {document["metadata"]!["name"]}";
            if ((string?)document["metadata"]!["namespace"] != expectedNamespace)
            {
                problems.Add($"{name}: not in namespace {expectedNamespace}");
            }
            var selector = (string?)document["kind"] switch
            {
                "Deployment" or "PodDisruptionBudget" => document["spec"]!["selector"]!["matchLabels"],
                "Service" => document["spec"]!["selector"],
                "NetworkPolicy" => document["spec"]!["podSelector"]!["matchLabels"],
                _ => null,
            };
            if (selector is not null && (string?)selector["app.kubernetes.io/instance"] != instance)
            {
                problems.Add($"{name}: selector without app.kubernetes.io/instance={instance}");
            }
        }
        var budget = documents.Single(d => (string?)d["kind"] == "PodDisruptionBudget" && (string?)d["metadata"]!["name"] == "entry")["spec"]!;
        var deployment = documents.Single(d => (string?)d["kind"] == "Deployment" && (string?)d["metadata"]!["name"] == "entry");
        var autoscaler = documents.SingleOrDefault(d => (string?)d["kind"] == "HorizontalPodAutoscaler");
        var fewest = autoscaler is not null ? (int)autoscaler["spec"]!["minReplicas"]! : (int?)deployment["spec"]!["replicas"] ?? 1;
        var drainable = budget["maxUnavailable"] is JsonValue max ? (int)max >= 1 : budget["minAvailable"] is JsonValue min && (int)min < fewest;
        if (!drainable)
        {
            problems.Add($"PodDisruptionBudget entry blocks drains at {fewest} replica(s)");
        }
        var core = Pods(documents).Single(p => p.Name == "core-node");
        var agent = core.Spec["containers"]!.AsArray().Single(c => (string?)c!["name"] == "core")!;
        var env = agent["env"]!.AsArray().Select(e => e!).ToList();
        var hostIp = env.FindIndex(e => (string?)e["name"] == "HOST_IP");
        var listen = env.FindIndex(e => (string?)e["name"] == "CORE_METRICS_LISTEN");
        // A $(VAR) reference sees only the variables before it.
        if (hostIp < 0 || listen < hostIp || (string?)env[hostIp]["valueFrom"]?["fieldRef"]?["fieldPath"] != "status.hostIP"
            || (string?)env[listen]["value"] != "$(HOST_IP):9464")
        {
            problems.Add("core: CORE_METRICS_LISTEN is not $(HOST_IP):9464 after HOST_IP from status.hostIP");
        }
        var annotations = core.Template["metadata"]?["annotations"];
        if ((string?)annotations?["prometheus.io/scrape"] != "true" || (string?)annotations["prometheus.io/port"] != "9464")
        {
            problems.Add("core: pod not announced for scraping on 9464");
        }
        if ((string?)agent["readinessProbe"]?["httpGet"]?["path"] != "/readyz" || (string?)agent["livenessProbe"]?["httpGet"]?["path"] != "/healthz"
            || !agent["ports"]!.AsArray().Any(p => (string?)p!["name"] == "metrics" && (int)p["containerPort"]! == 9464))
        {
            problems.Add("core: probes are not /readyz and /healthz on the metrics port 9464");
        }
        return problems;
    }

    /// <summary>
    /// Every image from the registry with an explicit tag other than latest (the overlays pin them; base's bare names
    /// must not survive a render), and every selector or reference pointing at something the overlay renders: a
    /// Service, PodDisruptionBudget or NetworkPolicy selects some workload's pods, an autoscaler's target exists.
    /// </summary>
    public static List<string> ImagesAndReferences(List<JsonObject> documents)
    {
        var problems = new List<string>();
        foreach (var (name, container, _) in Containers(documents))
        {
            var image = (string?)container["image"] ?? "";
            var tag = image.Contains('@', StringComparison.Ordinal) ? "digest" : image[(image.LastIndexOf('/') + 1)..].Split(':').ElementAtOrDefault(1);
            if (!image.Contains('/', StringComparison.Ordinal) || string.IsNullOrEmpty(tag) || tag == "latest")
            {
                problems.Add($"{name}: image {image} is not a registry image with a pinned tag");
            }
        }
        var podLabels = Pods(documents).Select(p => p.Template["metadata"]!["labels"]!.AsObject()).ToList();
        bool SelectsSomething(JsonNode? selector) => selector is JsonObject wanted && wanted.Count > 0
            && podLabels.Any(labels => wanted.All(w => (string?)labels[w.Key] == (string?)w.Value));
        foreach (var document in documents)
        {
            var name = $"{document["kind"]} {document["metadata"]!["name"]}";
            var (selects, selector) = (string?)document["kind"] switch
            {
                "Service" => (true, document["spec"]!["selector"]),
                "PodDisruptionBudget" or "Deployment" => (true, document["spec"]!["selector"]!["matchLabels"]),
                "NetworkPolicy" => (true, document["spec"]!["podSelector"]!["matchLabels"]),
                _ => (false, null),
            };
            if (selects && !SelectsSomething(selector))
            {
                problems.Add($"{name}: selects no pod the overlay renders");
            }
            if ((string?)document["kind"] == "HorizontalPodAutoscaler")
            {
                var target = document["spec"]!["scaleTargetRef"]!;
                if (!documents.Any(d => (string?)d["kind"] == (string?)target["kind"] && (string?)d["metadata"]!["name"] == (string?)target["name"]))
                {
                    problems.Add($"{name}: scales {target["kind"]} {target["name"]}, which the overlay does not render");
                }
            }
        }
        return problems;
    }

    /// <summary>entry's egress: DNS, PostgreSQL, the cores' gRPC port and HTTPS, each rule limited to its ports.</summary>
    public static List<string> EntryEgress(List<JsonObject> documents)
    {
        var policy = documents.Single(d => (string?)d["kind"] == "NetworkPolicy" && (string?)d["metadata"]!["name"] == "entry")["spec"]!;
        var problems = new List<string>();
        if (!(policy["policyTypes"]?.AsArray().Any(t => (string?)t == "Egress") ?? false))
        {
            problems.Add("entry: egress not restricted");
        }
        var rules = policy["egress"]?.AsArray() ?? [];
        if (rules.Any(r => r!["ports"] is not JsonArray { Count: > 0 }))
        {
            problems.Add("entry: an egress rule open to every port");
        }
        var ports = rules.SelectMany(r => r!["ports"]?.AsArray() ?? []).Select(p => (int)p!["port"]!).ToHashSet();
        if (!ports.SetEquals([53, 5432, 50051, 443]))
        {
            problems.Add($"entry: egress to ports {string.Join(',', ports.Order())}, not exactly 53, 443, 5432, 50051");
        }
        return problems;
    }

    /// <summary>Production: every secret volume a CSI volume of a gcp SecretProviderClass, but the operator's vpn-db-app.</summary>
    public static List<string> ProdSecrets(List<JsonObject> documents)
    {
        var classes = documents.Where(d => (string?)d["kind"] == "SecretProviderClass").ToDictionary(d => (string)d["metadata"]!["name"]!);
        var problems = classes.Values.Where(c => (string?)c["spec"]!["provider"] != "gcp").Select(c => $"SecretProviderClass {c["metadata"]!["name"]}: not gcp").ToList();
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
        if (!classes.Keys.Order(StringComparer.Ordinal).SequenceEqual(Secrets))
        {
            problems.Add($"SecretProviderClasses {string.Join(',', classes.Keys)}, not {string.Join(',', Secrets)}");
        }
        problems.AddRange(documents.Where(d => (string?)d["kind"] is "Secret" or "SealedSecret").Select(d => $"{d["kind"]} {d["metadata"]!["name"]} in production"));
        return problems;
    }

    /// <summary>Dev: every secret volume a Kubernetes Secret that one of the overlay's SealedSecrets produces.</summary>
    public static List<string> DevSecrets(List<JsonObject> documents)
    {
        var sealedNames = documents.Where(d => (string?)d["kind"] == "SealedSecret").Select(d => (string)d["metadata"]!["name"]!).ToHashSet();
        var mounted = Pods(documents).SelectMany(p => p.Spec["volumes"]!.AsArray())
            .Select(v => (string?)v!["secret"]?["secretName"]).OfType<string>().ToHashSet();
        var problems = mounted.Where(m => !sealedNames.Contains(m)).Select(m => $"secret {m} is mounted but sealed nowhere").ToList();
        if (!mounted.Order(StringComparer.Ordinal).SequenceEqual(Secrets))
        {
            problems.Add($"mounted secrets {string.Join(',', mounted)}, not {string.Join(',', Secrets)}");
        }
        return problems;
    }

    public static IEnumerable<Pod> Pods(IEnumerable<JsonObject> documents) =>
        documents.Where(d => (string?)d["kind"] is "Deployment" or "DaemonSet" or "Job")
            .Select(d => new Pod((string)d["metadata"]!["name"]!, d["spec"]!["template"]!.AsObject(), d["spec"]!["template"]!["spec"]!.AsObject()));

    /// <summary>Every container as "workload/container", init containers first.</summary>
    public static IEnumerable<(string Name, JsonObject Container, bool Init)> Containers(IEnumerable<JsonObject> documents) =>
        Pods(documents).SelectMany(p =>
            (p.Spec["initContainers"]?.AsArray() ?? []).Select(c => ($"{p.Name}/{c!["name"]}", c.AsObject(), true))
            .Concat((p.Spec["containers"]?.AsArray() ?? []).Select(c => ($"{p.Name}/{c!["name"]}", c.AsObject(), false))));
}
