using System.Text.RegularExpressions;

namespace Vpn.EndToEnd;

/// <summary>
/// The environment a rendered container starts with, as the kubelet builds it: the image's ENV (the final stage of its
/// Dockerfile), then the container's envFrom ConfigMaps (as rendered), then its env in order, <c>$(VAR)</c> references
/// expanded from the variables before them, <c>fieldRef status.hostIP</c> given a stand-in address. A *_FILE setting's
/// file is written under a temporary root (its mount path moved there) with the content the caller gives for it.
/// </summary>
internal static partial class RenderedContainer
{
    public const string HostIp = "192.0.2.10";

    public static Dictionary<string, string> Environment(List<JsonObject> documents, JsonNode container, string dockerfile, string root,
        Func<string, string> fileContent)
    {
        var environment = ImageEnvironment(dockerfile);
        foreach (var source in container["envFrom"]?.AsArray() ?? [])
        {
            var name = (string)source!["configMapRef"]!["name"]!;
            var map = Assert.Single(documents, d => (string?)d["kind"] == "ConfigMap" && (string?)d["metadata"]!["name"] == name);
            foreach (var (key, value) in map["data"]!.AsObject())
            {
                environment[key] = (string)value!;
            }
        }
        var mounts = container["volumeMounts"]?.AsArray().Select(m => (string)m!["mountPath"]!).ToList() ?? [];
        var defined = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in container["env"]?.AsArray() ?? [])
        {
            var name = (string)variable!["name"]!;
            string value;
            if (variable["valueFrom"] is { } from)
            {
                Assert.Equal("status.hostIP", (string?)from["fieldRef"]?["fieldPath"]);
                value = HostIp;
            }
            else
            {
                value = Reference().Replace((string)variable["value"]!, m => defined.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);
            }
            defined[name] = value;
            if (name.EndsWith("_FILE", StringComparison.Ordinal))
            {
                var mount = Assert.Single(mounts, m => value.StartsWith(m.TrimEnd('/') + "/", StringComparison.Ordinal));
                var local = Path.Combine(root, mount.Trim('/').Replace('/', '_'), value[(mount.TrimEnd('/').Length + 1)..]);
                Directory.CreateDirectory(Path.GetDirectoryName(local)!);
                File.WriteAllText(local, fileContent(name[..^"_FILE".Length]));
                value = local;
            }
            environment[name] = value;
        }
        return environment;
    }

    /// <summary>The ENV of the Dockerfile's final stage (<c>ENV K=V …</c>, continuation lines joined).</summary>
    public static Dictionary<string, string> ImageEnvironment(string dockerfile)
    {
        var text = Continuation().Replace(File.ReadAllText(dockerfile), " ");
        var lines = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var lastStage = lines.FindLastIndex(l => l.StartsWith("FROM ", StringComparison.OrdinalIgnoreCase));
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(Math.Max(lastStage, 0)).Where(l => l.StartsWith("ENV ", StringComparison.OrdinalIgnoreCase)))
        {
            var pairs = EnvPair().Matches(line[4..]);
            Assert.True(pairs.Count > 0, $"{dockerfile}: only ENV KEY=VALUE is read here: {line}");
            foreach (Match pair in pairs)
            {
                environment[pair.Groups["key"].Value] = pair.Groups["value"].Value.Trim('"');
            }
        }
        return environment;
    }

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex Reference();

    [GeneratedRegex(@"\\\r?\n")]
    private static partial Regex Continuation();

    [GeneratedRegex(@"(?<key>[A-Za-z_][A-Za-z0-9_]*)=(?<value>""[^""]*""|\S*)")]
    private static partial Regex EnvPair();
}
