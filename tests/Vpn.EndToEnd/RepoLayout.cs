namespace Vpn.EndToEnd;

/// <summary>
/// Where the service binaries are: the repository root is found by walking up to <c>Vpn.slnx</c>,
/// and the configuration/target framework are read from this test assembly's own output path
/// (<c>tests/Vpn.EndToEnd/bin/&lt;Configuration&gt;/&lt;tfm&gt;/</c>), so a Release test run uses Release services.
/// </summary>
internal static class RepoLayout
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string Root => s_root.Value;

    public static string Configuration { get; } = OutputPathSegment(1) ?? "Debug";

    public static string TargetFramework { get; } = OutputPathSegment(0) ?? "net10.0";

    public static string EntryDll => ServiceDll("Vpn.Entry");

    public static string CoreDll => ServiceDll("Vpn.Core");

    public static string ServiceDll(string project) =>
        Path.Combine(Root, "src", project, "bin", Configuration, TargetFramework, project + ".dll");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Vpn.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No Vpn.slnx above {AppContext.BaseDirectory}.");
    }

    /// <summary>0 = the directory holding the test assembly (tfm), 1 = its parent (configuration).</summary>
    private static string? OutputPathSegment(int up)
    {
        var dir = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        for (var i = 0; i < up && dir is not null; i++)
        {
            dir = dir.Parent;
        }
        // Sanity check: the layout is bin/<Configuration>/<tfm>.
        var tfmDir = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        return tfmDir.Parent?.Parent?.Name == "bin" ? dir?.Name : null;
    }
}
