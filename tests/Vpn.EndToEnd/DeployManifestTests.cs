namespace Vpn.EndToEnd;

/// <summary>
/// The prod overlay as <c>kubectl kustomize</c> renders it: its CloudNativePG Cluster is valid against the operator's
/// CRD schema (vendored in deploy/k8s/schemas), entry reads DATABASE_URL from the operator's secret (the read-write
/// Service), and the connection budget (for the autoscaler's maximum) fits the Cluster's max_connections. Mutated copies must be refused, so the
/// validation can fail.
/// </summary>
public sealed class DeployManifestTests
{
    private static readonly string Prod = Path.Combine(RepoLayout.Root, "deploy", "k8s", "overlays", "prod");
    private static readonly string ClusterSchema = Path.Combine(RepoLayout.Root, "deploy", "k8s", "schemas", "postgresql.cnpg.io_cluster_v1.json");

    [Fact]
    public async Task ProdOverlay_CloudNativePgCluster_ValidAgainstItsCrdSchema()
    {
        var documents = await KubernetesManifests.RenderAsync(Prod);
        var cluster = KubernetesManifests.Single(documents, "Cluster", "vpn-db");
        var schema = KubernetesManifests.LoadStrictSchema(ClusterSchema);

        Assert.Null(KubernetesManifests.Validate(schema, cluster));
        Assert.Equal("postgresql.cnpg.io/v1", (string?)cluster["apiVersion"]);
        Assert.Equal("vpn", (string?)cluster["metadata"]!["namespace"]);
        Assert.Equal(3, (int)cluster["spec"]!["instances"]!);
        Assert.True((int)cluster["spec"]!["postgresql"]!["synchronous"]!["number"]! >= 1);
        Assert.Equal("required", (string?)cluster["spec"]!["postgresql"]!["synchronous"]!["dataDurability"]);
        Assert.StartsWith("registry.example.net/vpn/postgresql:15", (string?)cluster["spec"]!["imageName"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("instances as a string", "/spec/instances", "\"3\"")]
    [InlineData("an unknown field under spec", "/spec/replicas", "3")]
    [InlineData("an unknown synchronous method", "/spec/postgresql/synchronous/method", "\"all\"")]
    [InlineData("no instances below the minimum", "/spec/instances", "0")]
    [InlineData("a parameter that is not a string", "/spec/postgresql/parameters/max_connections", "200")]
    public async Task ProdOverlay_MutatedCluster_Refused(string mutation, string path, string json)
    {
        var documents = await KubernetesManifests.RenderAsync(Prod);
        var cluster = KubernetesManifests.Single(documents, "Cluster", "vpn-db").DeepClone().AsObject();
        var segments = path.Trim('/').Split('/');
        var parent = segments[..^1].Aggregate((JsonNode)cluster, (node, segment) => node[segment]!);
        parent[segments[^1]] = JsonNode.Parse(json);

        var errors = KubernetesManifests.Validate(KubernetesManifests.LoadStrictSchema(ClusterSchema), cluster);

        Assert.True(errors is not null, $"The schema accepted a Cluster with {mutation}.");
        TestContext.Current.TestOutputHelper?.WriteLine($"{mutation}: {errors}");
    }

    [Fact]
    public async Task ProdOverlay_EntryReadsTheOperatorsSecret_AndItsBudgetFitsMaxConnections()
    {
        var documents = await KubernetesManifests.RenderAsync(Prod);
        var entry = KubernetesManifests.Single(documents, "Deployment", "entry");
        var pod = entry["spec"]!["template"]!["spec"]!;
        var containers = pod["initContainers"]!.AsArray().Concat(pod["containers"]!.AsArray()).ToList();

        foreach (var container in containers)
        {
            var database = Assert.Single(container!["env"]!.AsArray(), e => (string?)e!["name"] == "DATABASE_URL_FILE");
            Assert.Equal("/var/run/secrets/vpn-db/uri", (string?)database!["value"]);
            Assert.Contains(container["volumeMounts"]!.AsArray(), m => (string?)m!["name"] == "vpn-db-app" && (string?)m["mountPath"] == "/var/run/secrets/vpn-db");
        }
        var volume = Assert.Single(pod["volumes"]!.AsArray(), v => (string?)v!["name"] == "vpn-db-app");
        Assert.Equal("vpn-db-app", (string?)volume!["secret"]!["secretName"]);
        Assert.Equal("uri", (string?)volume["secret"]!["items"]![0]!["key"]);

        // APP_ENTRY_REPLICAS × APP_DB_POOL_SIZE + APP_DB_RESERVED_CONNECTIONS ≤ the Cluster's max_connections, and the
        // replica count entry budgets for is the most its HorizontalPodAutoscaler may run; the Deployment sets none.
        var settings = Assert.Single(documents, d => (string?)d["kind"] == "ConfigMap" && ((string?)d["metadata"]!["name"])!.StartsWith("entry-settings", StringComparison.Ordinal));
        int Setting(string name) => int.Parse((string)settings["data"]![name]!, CultureInfo.InvariantCulture);
        var maxConnections = int.Parse((string)KubernetesManifests.Single(documents, "Cluster", "vpn-db")["spec"]!["postgresql"]!["parameters"]!["max_connections"]!, CultureInfo.InvariantCulture);
        var autoscaler = KubernetesManifests.Single(documents, "HorizontalPodAutoscaler", "entry");
        Assert.Equal("entry", (string?)autoscaler["spec"]!["scaleTargetRef"]!["name"]);
        Assert.Equal(Setting("APP_ENTRY_REPLICAS"), (int)autoscaler["spec"]!["maxReplicas"]!);
        Assert.InRange((int)autoscaler["spec"]!["minReplicas"]!, 2, Setting("APP_ENTRY_REPLICAS"));
        Assert.Null(entry["spec"]!["replicas"]);
        // A rollout must not add a replica beyond the budget: no surge.
        Assert.Equal(0, (int)entry["spec"]!["strategy"]!["rollingUpdate"]!["maxSurge"]!);
        Assert.True(Setting("APP_ENTRY_REPLICAS") * Setting("APP_DB_POOL_SIZE") + Setting("APP_DB_RESERVED_CONNECTIONS") <= maxConnections);
    }
}
