using System.Text.Json;
using System.Text.RegularExpressions;
using Json.Schema;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Vpn.EndToEnd;

/// <summary>
/// Rendered kustomize output as JSON, and a CustomResourceDefinition's openAPIV3Schema turned into a JSON Schema that
/// judges a resource as the API server's strict field validation does (<c>kubectl apply --validate=strict</c>): an
/// object with <c>properties</c> takes no other field unless <c>x-kubernetes-preserve-unknown-fields</c>;
/// <c>x-kubernetes-int-or-string</c> is an integer or a string; <c>nullable</c> admits null; an embedded resource
/// has apiVersion, kind and metadata. CEL rules (<c>x-kubernetes-validations</c>) are the server's and not checked.
/// </summary>
internal static partial class KubernetesManifests
{
    /// <summary><c>kubectl kustomize &lt;directory&gt;</c>, every document as JSON (scalars typed as YAML 1.2's core schema does).</summary>
    public static async Task<List<JsonObject>> RenderAsync(string directory)
    {
        Prerequisites.RequireExecutable("kubectl");
        var yaml = await ProcessRunner.RunCheckedAsync("kubectl", "kustomize", directory);
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return [.. stream.Documents.Select(d => (JsonObject)ToJson(d.RootNode)!)];
    }

    public static JsonObject Single(IEnumerable<JsonObject> documents, string kind, string name) =>
        Assert.Single(documents, d => (string?)d["kind"] == kind && (string?)d["metadata"]?["name"] == name);

    /// <summary>The CRD schema (a JSON file holding openAPIV3Schema) as a strict JSON Schema.</summary>
    public static JsonSchema LoadStrictSchema(string path)
    {
        var schema = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Strictify(schema);
        return JsonSchema.FromText(schema.ToJsonString());
    }

    /// <summary>Null when valid, else the errors (instance location: message), one per line.</summary>
    public static string? Validate(JsonSchema schema, JsonNode resource)
    {
        using var document = JsonDocument.Parse(resource.ToJsonString());
        var results = schema.Evaluate(document.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (results.IsValid)
        {
            return null;
        }
        var errors = (results.Details ?? []).Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key} {e.Value}"));
        return string.Join('\n', errors.Distinct().Take(20));
    }

    private static void Strictify(JsonObject schema)
    {
        var preserve = (bool?)schema["x-kubernetes-preserve-unknown-fields"] == true;
        if ((bool?)schema["x-kubernetes-int-or-string"] == true)
        {
            // The CRD spells it anyOf [{type: integer}, {type: string}]; one type list says the same without the noise
            // of a failed branch in every error listing.
            schema.Remove("anyOf");
            schema["type"] = new JsonArray("integer", "string");
        }
        if ((bool?)schema["nullable"] == true && schema["type"] is JsonValue type)
        {
            schema["type"] = new JsonArray((string)type!, "null");
        }
        if ((bool?)schema["x-kubernetes-embedded-resource"] == true)
        {
            var properties = (schema["properties"] ??= new JsonObject()).AsObject();
            foreach (var field in new[] { "apiVersion", "kind", "metadata" })
            {
                properties[field] ??= new JsonObject();
            }
        }
        if (schema["properties"] is JsonObject && schema["additionalProperties"] is null && !preserve)
        {
            schema["additionalProperties"] = false;
        }
        foreach (var key in schema.Select(p => p.Key).Where(k => k.StartsWith("x-kubernetes-", StringComparison.Ordinal) || k == "nullable").ToList())
        {
            schema.Remove(key);
        }
        foreach (var child in Subschemas(schema))
        {
            Strictify(child);
        }
    }

    private static IEnumerable<JsonObject> Subschemas(JsonObject schema)
    {
        if (schema["properties"] is JsonObject properties)
        {
            foreach (var (_, value) in properties)
            {
                if (value is JsonObject child)
                {
                    yield return child;
                }
            }
        }
        foreach (var key in new[] { "items", "additionalProperties", "not" })
        {
            if (schema[key] is JsonObject child)
            {
                yield return child;
            }
        }
        foreach (var key in new[] { "anyOf", "allOf", "oneOf" })
        {
            if (schema[key] is JsonArray list)
            {
                foreach (var child in list.OfType<JsonObject>())
                {
                    yield return child;
                }
            }
        }
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(c => KeyValuePair.Create(((YamlScalarNode)c.Key).Value!, ToJson(c.Value)))),
        YamlSequenceNode list => new JsonArray([.. list.Children.Select(ToJson)]),
        YamlScalarNode { Style: ScalarStyle.Plain } scalar => Plain(scalar.Value ?? ""),
        YamlScalarNode scalar => JsonValue.Create(scalar.Value ?? ""),
        _ => throw new InvalidOperationException($"Unexpected YAML node {node.NodeType} at {node.Start}"),
    };

    // YAML 1.2 core schema for plain scalars: null, booleans, integers and floats; everything else is a string.
    private static JsonValue? Plain(string value) => value switch
    {
        "" or "~" or "null" or "Null" or "NULL" => null,
        "true" or "True" or "TRUE" => JsonValue.Create(true),
        "false" or "False" or "FALSE" => JsonValue.Create(false),
        _ when IntegerScalar().IsMatch(value) && int.TryParse(value, CultureInfo.InvariantCulture, out var small) => JsonValue.Create(small),
        _ when IntegerScalar().IsMatch(value) => JsonValue.Create(long.Parse(value, CultureInfo.InvariantCulture)),
        _ when FloatScalar().IsMatch(value) => JsonValue.Create(double.Parse(value, CultureInfo.InvariantCulture)),
        _ => JsonValue.Create(value),
    };

    [GeneratedRegex("^[-+]?[0-9]+$")]
    private static partial Regex IntegerScalar();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatScalar();
}
