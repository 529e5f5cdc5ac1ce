namespace Vpn.EndToEnd;

/// <summary>
/// Debian's podman as root with the runc runtime (the default crun fails on this kernel's cgroup layout) and the ulimits
/// it needs here. Containers are named uniquely per run and removed by name; nothing is left behind on dispose.
/// </summary>
internal static class Podman
{
    /// <summary>Global options before every subcommand.</summary>
    private static readonly string[] s_global = ["--runtime", "runc"];

    /// <summary>
    /// Options of every <c>podman run</c>: the ulimits, and the helper processes' lifetime cap, so a container outlives a
    /// crashed test host only that long (conmon kills it; --rm then removes it).
    /// </summary>
    public static readonly string[] RunLimits =
    [
        "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1024:1024",
        "--timeout", ((int)VpnLab.ProcessLifetimeCap.TotalSeconds).ToString(CultureInfo.InvariantCulture),
    ];

    /// <summary>podman, runc and root; debootstrap for the local base image. Missing: skip locally, fail under CI.</summary>
    public static void Require()
    {
        Prerequisites.Require(Prerequisites.IsRoot, "root (podman with the runc runtime, debootstrap)");
        foreach (var tool in new[] { "podman", "runc", "debootstrap", "dotnet" })
        {
            Prerequisites.RequireExecutable(tool);
        }
    }

    public static string UniqueName(string prefix) => $"vpn-{prefix}-{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}";

    private static int s_counter;

    public static Task<ProcessResult> RunAsync(IEnumerable<string> arguments, TimeSpan? timeout = null) =>
        ProcessRunner.RunAsync("podman", [.. s_global, .. arguments], null, timeout ?? TimeSpan.FromSeconds(120));

    /// <summary><c>podman run --rm</c> to completion (a one-shot step such as <c>migrate</c>).</summary>
    public static Task<ProcessResult> RunToCompletionAsync(string name, IEnumerable<string> options, string image, IEnumerable<string> arguments,
        TimeSpan timeout) =>
        RunAsync(["run", "--rm", "--name", name, .. RunLimits, .. options, image, .. arguments], timeout);

    /// <summary>
    /// <c>podman run --rm</c> attached (its output is the process's). Killing the returned process does not stop the
    /// container: call <see cref="RemoveAsync"/>.
    /// </summary>
    public static BackgroundProcess Start(string name, IEnumerable<string> options, string image, IEnumerable<string> arguments) =>
        new("podman", [.. s_global, "run", "--rm", "--name", name, .. RunLimits, .. options, image, .. arguments]);

    /// <summary>Removes the container (stopping it at once); no error when it is gone already.</summary>
    public static async Task RemoveAsync(string name) =>
        await RunAsync(["rm", "--force", "--ignore", "--time", "0", name], TimeSpan.FromSeconds(60));

    /// <summary>The environment as <c>--env</c> options; a null value is left out (not set in the container).</summary>
    public static IEnumerable<string> EnvironmentOptions(IEnumerable<KeyValuePair<string, string?>> environment) =>
        environment.Where(e => e.Value is not null).SelectMany(e => new[] { "--env", $"{e.Key}={e.Value}" });

    /// <summary>The PID (in the root PID namespace) of the container's first process.</summary>
    public static async Task<int> MainPidAsync(string name)
    {
        var result = (await RunAsync(["inspect", "--format", "{{.State.Pid}}", name])).EnsureSuccess($"podman inspect {name}");
        return int.Parse(result.StandardOutput.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>The effective capability set of a process (CapEff in /proc/PID/status) as a bit mask.</summary>
    public static ulong EffectiveCapabilities(int pid)
    {
        var line = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        return ulong.Parse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }

    /// <summary>CAP_NET_ADMIN's bit (linux/capability.h).</summary>
    public const ulong NetAdmin = 1UL << 12;
}
