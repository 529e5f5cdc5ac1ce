namespace Vpn.Core.Dns;

/// <summary>
/// <c>Vpn.Core resolver-config [--out PATH]</c>: validates core's settings exactly as core does at start (the same
/// environment, every problem reported) and writes this node's unbound.conf to PATH (stdout without --out). What the
/// pod's init container runs before the unbound sidecar starts, and what the end-to-end tests run.
/// </summary>
/// <remarks>
/// Exit codes: 0 written; 1 the file could not be written; 2 invalid settings or arguments. The argument list is one
/// option, so it is parsed here rather than with a command-line library (none is a dependency of this repository).
/// </remarks>
public static class ResolverConfigCommand
{
    public const string Name = "resolver-config";

    private const string Usage = "usage: Vpn.Core resolver-config [--out /run/unbound/unbound.conf]";

    public static int Run(IReadOnlyList<string> arguments, IConfiguration configuration, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        string? path = null;
        for (var i = 0; i < arguments.Count; i++)
        {
            if (arguments[i] == "--out" && i + 1 < arguments.Count && path is null && arguments[i + 1].Length > 0)
            {
                path = arguments[++i];
            }
            else
            {
                error.WriteLine(Usage);
                return 2;
            }
        }
        var options = CoreOptions.Load(configuration, out var problems);
        if (problems.Count > 0)
        {
            error.WriteLine("resolver-config: invalid configuration:\n- " + string.Join("\n- ", problems));
            return 2;
        }
        var text = ResolverConfig.Render(options);
        if (path is null)
        {
            output.Write(text);
            return 0;
        }
        try
        {
            WriteAtomically(path, text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"resolver-config: could not write {path} ({e.GetType().Name}: {e.Message})");
            return 1;
        }
        output.WriteLine($"resolver-config: wrote {path}");
        return 0;
    }

    // Written next to the target and renamed over it: the resolver never reads half a file. World-readable, because the
    // resolver runs as another user than this command.
    private static void WriteAtomically(string path, string text)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        }
        try
        {
            using (var stream = new FileStream(temporary, fileOptions))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(text);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
