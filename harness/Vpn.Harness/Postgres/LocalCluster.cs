using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Vpn.Harness.Postgres;

/// <summary>
/// One throwaway cluster in <c>/tmp/vpn-pg-&lt;test pid&gt;-&lt;random&gt;</c>: the directory itself is the unix socket
/// directory and holds <c>data/</c> (the cluster) and <c>postgres.log</c>. A detached watchdog stops the server and
/// removes the directory once the test process is gone: after a normal exit (the exit hook only stops the server, see
/// <see cref="DestroyAtExitAsync"/>) or if it dies without running its exit hook (SIGKILL, crash); clusters left by
/// dead processes are also reaped when the next one is created.
/// </summary>
internal sealed partial class LocalCluster
{
    public const string DirectoryPrefix = "vpn-pg-";
    public const string TempRoot = "/tmp";

    private static readonly TimeSpan s_initTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_stopTimeout = TimeSpan.FromSeconds(30);
    private static int s_reaped;

    // Runs detached (setsid -f) so a process-tree kill of the test host does not take it along.
    // $1 test pid, $2 cluster directory, $3 data directory.
    private const string WatchdogScript = """
        exec </dev/null >/dev/null 2>&1
        while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
        [ -d "$2" ] || exit 0
        if [ -f "$3/postmaster.pid" ]; then
          pid=$(head -n 1 "$3/postmaster.pid")
          if [ -n "$pid" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = postgres ]; then
            kill -QUIT "$pid" 2>/dev/null
            i=0
            while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
            kill -KILL "$pid" 2>/dev/null
          fi
        fi
        rm -rf "$2"
        """;

    private readonly PostgresBinaries _binaries;
    private bool _watched;

    private LocalCluster(PostgresBinaries binaries, string baseDirectory)
    {
        _binaries = binaries;
        BaseDirectory = baseDirectory;
    }

    /// <summary>The cluster's temp directory; also the unix socket directory.</summary>
    public string BaseDirectory { get; }

    public string DataDirectory => Path.Combine(BaseDirectory, "data");

    public string LogFile => Path.Combine(BaseDirectory, "postgres.log");

    private string ConfigFile => Path.Combine(DataDirectory, "postgresql.conf");

    private string PidFile => Path.Combine(DataDirectory, "postmaster.pid");

    public int Port { get; private set; }

    public bool IsRunning => File.Exists(PidFile);

    public static Task<LocalCluster> CreateAsync(PostgresBinaries binaries) => CreateAsync(binaries, static cluster => cluster.InitAsync());

    /// <summary>A new cluster whose data directory <paramref name="initialize"/> fills (initdb, or a base backup of a primary).</summary>
    private static async Task<LocalCluster> CreateAsync(PostgresBinaries binaries, Func<LocalCluster, Task> initialize)
    {
        if (Interlocked.Exchange(ref s_reaped, 1) == 0)
        {
            await ReapAbandonedAsync(binaries);
        }
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("The PostgreSQL test fixture needs Linux.");
        }
        var path = Path.Combine(TempRoot, $"{DirectoryPrefix}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..10]}");
        // 0755: clients running as other users (e.g. inside network namespaces) can reach the socket; data/ stays 0700.
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var cluster = new LocalCluster(binaries, path);
        try
        {
            await PostgresBinaries.GiveToServiceUserAsync(path);
            await cluster.StartWatchdogAsync();
            await initialize(cluster);
            await cluster.StartOnFreePortAsync();
            return cluster;
        }
        catch
        {
            await cluster.DestroyAsync();
            throw;
        }
    }

    /// <summary>Starts the server again on the same port and data directory.</summary>
    public async Task StartAsync()
    {
        var result = await TryStartAsync();
        if (result is not null)
        {
            throw new InvalidOperationException(StartFailure(result));
        }
    }

    /// <summary><c>pg_ctl stop</c> with the given mode (smart, fast, immediate); a no-op when not running.</summary>
    public async Task StopAsync(string mode)
    {
        if (!IsRunning)
        {
            return;
        }
        var result = await _binaries.RunAsync(_binaries.PgCtl,
            ["stop", "-D", DataDirectory, "-m", mode, "-w", "-t", Seconds(s_stopTimeout), "-s"], s_stopTimeout + TimeSpan.FromSeconds(10));
        if (result.ExitCode != 0 && IsRunning)
        {
            throw new InvalidOperationException($"pg_ctl stop -m {mode} failed ({result.ExitCode}): {result.StandardError.Trim()} {result.StandardOutput.Trim()}\n{LogSection()}");
        }
    }

    /// <summary>Stops immediately (killing the postmaster if pg_ctl cannot) and removes the directory. Never throws.</summary>
    public async Task DestroyAsync()
    {
        try
        {
            await StopAsync("immediate");
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException)
        {
            KillPostmaster(DataDirectory);
        }
        DeleteDirectory(BaseDirectory);
    }

    /// <summary>
    /// The process-exit variant of <see cref="DestroyAsync"/>: stops the server immediately, like it, but leaves removing
    /// the directory to the watchdog when one runs (it removes it within a second of this process being gone). Deleting
    /// a cluster that served a whole test run (hundreds of databases, ~1–2 GB) takes seconds, and at process exit those
    /// seconds count against the test runner's shutdown grace (xunit.v3: 11 s after the run returns, then exit code 1).
    /// Without a watchdog the directory is deleted here, as by <see cref="DestroyAsync"/>. Never throws.
    /// </summary>
    public async Task DestroyAtExitAsync()
    {
        if (!_watched)
        {
            await DestroyAsync();
            return;
        }
        try
        {
            await StopAsync("immediate");
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException)
        {
            KillPostmaster(DataDirectory);
        }
    }

    public string ReadLog()
    {
        try
        {
            using var stream = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private async Task InitAsync()
    {
        string[] common = ["-D", DataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"];
        var result = await _binaries.RunAsync(_binaries.InitDb, [.. common, "--locale=C.UTF-8"], s_initTimeout);
        if (result.ExitCode != 0)
        {
            // C.UTF-8 is missing on some systems; the plain C locale always exists.
            DeleteDirectory(DataDirectory);
            var fallback = await _binaries.RunAsync(_binaries.InitDb, [.. common, "--no-locale"], s_initTimeout);
            if (fallback.ExitCode != 0)
            {
                throw new InvalidOperationException(
                    $"initdb failed ({fallback.ExitCode}) in {DataDirectory}: {fallback.StandardError.Trim()} {fallback.StandardOutput.Trim()}\n" +
                    $"(with --locale=C.UTF-8: {result.StandardError.Trim()})");
            }
        }
        // Durability is irrelevant for a throwaway cluster; speed is not.
        var settings = new StringBuilder()
            .AppendLine()
            .AppendLine("# --- Vpn.Harness.Postgres ---")
            .AppendLine("listen_addresses = '127.0.0.1'")
            .AppendLine($"unix_socket_directories = '{BaseDirectory}'")
            .AppendLine("fsync = off")
            .AppendLine("synchronous_commit = off")
            .AppendLine("full_page_writes = off")
            .AppendLine("max_connections = 300")
            .AppendLine("timezone = 'UTC'")
            .AppendLine("log_timezone = 'UTC'")
            .ToString();
        await File.AppendAllTextAsync(ConfigFile, settings);
    }

    private async Task StartOnFreePortAsync()
    {
        const int attempts = 5;
        for (var attempt = 1; ; attempt++)
        {
            Port = FreeTcpPort();
            // The last 'port' line wins, so a retry simply appends another.
            await File.AppendAllTextAsync(ConfigFile, $"port = {Port}\n");
            var logBefore = ReadLog().Length;
            var failure = await TryStartAsync();
            if (failure is null)
            {
                return;
            }
            var log = ReadLog();
            var portTaken = log.Length > logBefore && log[logBefore..].Contains("Address already in use", StringComparison.Ordinal);
            if (!portTaken || attempt == attempts)
            {
                throw new InvalidOperationException(StartFailure(failure));
            }
        }
    }

    /// <summary>Returns null on success, otherwise pg_ctl's complaint (the server is stopped again).</summary>
    private async Task<string?> TryStartAsync()
    {
        if (IsRunning)
        {
            return null;
        }
        string failure;
        try
        {
            var result = await _binaries.RunAsync(_binaries.PgCtl,
                ["start", "-D", DataDirectory, "-l", LogFile, "-w", "-t", Seconds(s_startTimeout), "-s"], s_startTimeout + TimeSpan.FromSeconds(10));
            if (result.ExitCode == 0)
            {
                return null;
            }
            failure = $"pg_ctl start exited with {result.ExitCode}: {result.StandardError.Trim()} {result.StandardOutput.Trim()}";
        }
        catch (TimeoutException e)
        {
            failure = e.Message;
        }
        try
        {
            await StopAsync("immediate");
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            KillPostmaster(DataDirectory);
        }
        return failure;
    }

    private string StartFailure(string failure) =>
        $"PostgreSQL in {DataDirectory} failed to start on 127.0.0.1:{Port} (limit {s_startTimeout.TotalSeconds:0} s). {failure}\n{LogSection()}";

    private string LogSection()
    {
        var log = ReadLog();
        const int max = 8000;
        return $"--- server log {LogFile} ---\n{(log.Length > max ? "…" + log[^max..] : log)}";
    }

    private async Task StartWatchdogAsync()
    {
        if (Prerequisites.FindExecutable("setsid") is null)
        {
            return; // the exit hook and the reaper still cover the normal cases
        }
        var result = await ProcessRunner.RunAsync("setsid",
            ["-f", "sh", "-c", WatchdogScript, "vpn-pg-watchdog", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), BaseDirectory, DataDirectory],
            null, TimeSpan.FromSeconds(10));
        result.EnsureSuccess("starting the PostgreSQL watchdog");
        _watched = true;
    }

    /// <summary>Removes clusters whose test process is gone (normally the watchdog already did).</summary>
    private static async Task ReapAbandonedAsync(PostgresBinaries binaries)
    {
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateDirectories(TempRoot, DirectoryPrefix + "*").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var directory in candidates)
        {
            var owner = Path.GetFileName(directory)[DirectoryPrefix.Length..].Split('-')[0];
            if (!int.TryParse(owner, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || Directory.Exists($"/proc/{pid}"))
            {
                continue;
            }
            try
            {
                await new LocalCluster(binaries, directory).DestroyAsync();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or TimeoutException)
            {
                // Someone else's, or already going away.
            }
        }
    }

    private static void KillPostmaster(string dataDirectory)
    {
        try
        {
            var pidText = File.ReadLines(Path.Combine(dataDirectory, "postmaster.pid")).FirstOrDefault();
            if (int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) &&
                File.ReadAllText($"/proc/{pid}/comm").Trim() == "postgres")
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
                process.WaitForExit(5000);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
        }
    }

    private static void DeleteDirectory(string path)
    {
        for (var attempt = 0; attempt < 5 && Directory.Exists(path); attempt++)
        {
            try
            {
                Directory.Delete(path, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Thread.Sleep(100); // a backend may still be removing its temp files
            }
        }
    }

    private static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Seconds(TimeSpan timeout) => ((int)timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture);
}
