using Json.Schema;

namespace Vpn.EndToEnd;

/// <summary>
/// The schema every rendered document is judged by, as the API server's strict field validation
/// (<c>kubectl apply --validate=strict</c>) would: built-in kinds by the Kubernetes OpenAPI definitions vendored in
/// deploy/k8s/schemas/kubernetes-definitions.json, the custom resources by their CRDs' openAPIV3Schema (the CRD files
/// beside it, made strict by <see cref="KubernetesManifests.LoadStrictSchema"/>), and every document's metadata, CRDs'
/// included, by ObjectMeta. Strict for the built-in definitions means: an object with properties takes no other field;
/// IntOrString is an integer or a string; a Quantity a string or a number (the API server parses both).
/// </summary>
internal static class KubernetesSchemas
{
    private static readonly string Directory = Path.Combine(RepoLayout.Root, "deploy", "k8s", "schemas");

    private static readonly Dictionary<string, string> s_crds = new(StringComparer.Ordinal)
    {
        ["postgresql.cnpg.io/v1 Cluster"] = "postgresql.cnpg.io_cluster_v1.json",
        ["secrets-store.csi.x-k8s.io/v1 SecretProviderClass"] = "secrets-store.csi.x-k8s.io_secretproviderclass_v1.json",
        ["bitnami.com/v1alpha1 SealedSecret"] = "bitnami.com_sealedsecret_v1alpha1.json",
    };

    private static readonly Lazy<(JsonObject Definitions, Dictionary<string, string> Kinds)> s_builtIn = new(LoadBuiltIn);
    private static readonly Dictionary<string, JsonSchema> s_cache = new(StringComparer.Ordinal);
    private static readonly Lock s_gate = new();

    public const string ObjectMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

    /// <summary>The schema of the document's apiVersion and kind; fails the test for a kind nothing here describes.</summary>
    public static JsonSchema For(JsonObject document)
    {
        var key = $"{(string?)document["apiVersion"]} {(string?)document["kind"]}";
        lock (s_gate)
        {
            if (s_cache.TryGetValue(key, out var cached))
            {
                return cached;
            }
            JsonSchema schema;
            if (s_crds.TryGetValue(key, out var file))
            {
                schema = KubernetesManifests.LoadStrictSchema(Path.Combine(Directory, file));
            }
            else
            {
                Assert.True(s_builtIn.Value.Kinds.TryGetValue(key, out var definition),
                    $"No vendored schema for {key}: add the kind to deploy/k8s/schemas/vendor.py (or its CRD) and regenerate.");
                schema = Definition(definition!);
            }
            s_cache[key] = schema;
            return schema;
        }
    }

    /// <summary>One built-in definition (e.g. <see cref="ObjectMeta"/>) as a strict schema.</summary>
    public static JsonSchema Definition(string name)
    {
        var definitions = s_builtIn.Value.Definitions;
        Assert.True(definitions.ContainsKey(name), $"No vendored definition {name}.");
        var root = new JsonObject
        {
            ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
            // Unique per definition: JsonSchema.Net registers schemas by $id.
            ["$id"] = $"https://schemas.vpn.test/kubernetes/{name}",
            ["$defs"] = definitions.DeepClone(),
            ["$ref"] = $"#/$defs/{name}",
        };
        return JsonSchema.FromText(root.ToJsonString());
    }

    /// <summary>Null when the document and its metadata are valid, else the errors, one per line.</summary>
    public static string? Validate(JsonObject document)
    {
        var errors = new List<string>();
        if (KubernetesManifests.Validate(For(document), document) is { } own)
        {
            errors.Add(own);
        }
        if (document["metadata"] is JsonObject metadata)
        {
            JsonSchema meta;
            lock (s_gate)
            {
                if (!s_cache.TryGetValue(ObjectMeta, out meta!))
                {
                    meta = s_cache[ObjectMeta] = Definition(ObjectMeta);
                }
            }
            if (KubernetesManifests.Validate(meta, metadata) is { } metaErrors)
            {
                errors.Add("metadata: " + metaErrors);
            }
        }
        else
        {
            errors.Add("no metadata");
        }
        return errors.Count == 0 ? null : string.Join('\n', errors);
    }

    private static (JsonObject, Dictionary<string, string>) LoadBuiltIn()
    {
        var file = JsonNode.Parse(File.ReadAllText(Path.Combine(Directory, "kubernetes-definitions.json")))!.AsObject();
        var definitions = file["definitions"]!.AsObject();
        var kinds = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, node) in definitions)
        {
            var definition = node!.AsObject();
            if (definition["x-kubernetes-group-version-kind"] is JsonArray gvks)
            {
                foreach (var gvk in gvks.OfType<JsonObject>())
                {
                    var group = (string?)gvk["group"];
                    kinds[$"{(string.IsNullOrEmpty(group) ? "" : group + "/")}{(string?)gvk["version"]} {(string?)gvk["kind"]}"] = name;
                }
            }
            switch (name)
            {
                case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
                    definition.Clear();
                    definition["type"] = new JsonArray("integer", "string");
                    continue;
                case "io.k8s.apimachinery.pkg.api.resource.Quantity":
                    definition.Clear();
                    definition["type"] = new JsonArray("string", "number");
                    continue;
            }
            Strictify(definition);
        }
        return (definitions, kinds);
    }

    private static void Strictify(JsonObject schema)
    {
        if (schema["$ref"] is JsonValue reference)
        {
            schema["$ref"] = ((string)reference!).Replace("#/definitions/", "#/$defs/", StringComparison.Ordinal);
        }
        if (schema["properties"] is JsonObject && schema["additionalProperties"] is null)
        {
            schema["additionalProperties"] = false;
        }
        foreach (var key in schema.Select(p => p.Key).Where(k => k.StartsWith("x-kubernetes-", StringComparison.Ordinal)).ToList())
        {
            schema.Remove(key);
        }
        if (schema["properties"] is JsonObject properties)
        {
            foreach (var (_, value) in properties)
            {
                if (value is JsonObject child)
                {
                    Strictify(child);
                }
            }
        }
        foreach (var key in new[] { "items", "additionalProperties" })
        {
            if (schema[key] is JsonObject child)
            {
                Strictify(child);
            }
        }
    }
}
