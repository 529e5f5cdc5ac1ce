namespace Vpn.EndToEnd;

/// <summary>The overlays of deploy/k8s, each rendered once per test process (kubectl kustomize is not free).</summary>
internal static class ManifestOverlays
{
    public static readonly string[] All = ["dev", "prod", "prod-native-canary"];

    private static readonly Dictionary<string, Task<List<JsonObject>>> s_rendered = new(StringComparer.Ordinal);
    private static readonly Lock s_gate = new();

    public static string Directory(string overlay) => Path.Combine(RepoLayout.Root, "deploy", "k8s", "overlays", overlay);

    /// <summary>The rendered documents; a fresh deep copy for every caller, so a test may mutate its own.</summary>
    public static async Task<List<JsonObject>> RenderAsync(string overlay)
    {
        Task<List<JsonObject>> render;
        lock (s_gate)
        {
            if (!s_rendered.TryGetValue(overlay, out render!))
            {
                render = s_rendered[overlay] = KubernetesManifests.RenderAsync(Directory(overlay));
            }
        }
        return [.. (await render).Select(d => d.DeepClone().AsObject())];
    }
}
