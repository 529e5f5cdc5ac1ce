namespace Vpn.EndToEnd;

/// <summary>
/// The four images built here by <c>deploy/docker/build-local.sh</c> (a local Debian base from debootstrap, kept between
/// runs; a self-contained publish made on the host), tagged for this test process only and removed on dispose.
/// </summary>
internal sealed class LocalImages : IAsyncDisposable
{
    private static readonly string Script = Path.Combine(RepoLayout.Root, "deploy", "docker", "build-local.sh");

    private LocalImages(string tag) => Tag = tag;

    public string Tag { get; }

    public string Entry => Image("entry");

    public string Core => Image("core");

    public string WireGuardGo => Image("wireguard-go");

    public string Unbound => Image("unbound");

    /// <summary>What the build printed (timings per step), for the test output.</summary>
    public string BuildLog { get; private set; } = "";

    public TimeSpan BuildTime { get; private set; }

    private string Image(string name) => $"localhost/vpn-{name}:{Tag}";

    /// <summary>Builds all four images (the base only when it is missing); throws with the script's output on failure.</summary>
    public static async Task<LocalImages> BuildAsync()
    {
        Podman.Require();
        var images = new LocalImages($"test-{Environment.ProcessId}");
        var watch = Stopwatch.StartNew();
        // A cap for a first run's debootstrap on a slow mirror, not a wait.
        var result = await ProcessRunner.RunAsync("bash", [Script, images.Tag], null, TimeSpan.FromMinutes(15));
        images.BuildTime = watch.Elapsed;
        images.BuildLog = result.StandardError.Trim();
        if (result.ExitCode != 0)
        {
            await images.DisposeAsync();
            throw new InvalidOperationException($"build-local.sh failed with {result.ExitCode}:\n{result.StandardError}\n{result.StandardOutput}");
        }
        return images;
    }

    public async ValueTask DisposeAsync()
    {
        // The images of this run; their layers go with them, the cached base stays.
        await Podman.RunAsync(["rmi", "--force", "--ignore", Entry, Core, WireGuardGo, Unbound], TimeSpan.FromSeconds(120));
    }
}
