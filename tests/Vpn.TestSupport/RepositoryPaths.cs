namespace Vpn.TestSupport;

/// <summary>The repository a test runs from: the directory holding Vpn.slnx above the test's output directory.</summary>
public static class RepositoryPaths
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Vpn.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No Vpn.slnx above {AppContext.BaseDirectory}.");
    });

    public static string Root => s_root.Value;

    /// <summary>A path under the repository root, from its segments.</summary>
    public static string Of(params string[] segments) => Path.Combine([Root, .. segments]);
}
