namespace Vpn.Harness.Postgres;

/// <summary>
/// Locates initdb/pg_ctl/postgres and runs them as the right OS user: the server refuses to run as root, so
/// under root every command goes through <c>runuser -u postgres --</c>; otherwise it runs as the current user.
/// </summary>
internal sealed class PostgresBinaries
{
    /// <summary>Optional override: a directory holding initdb, pg_ctl and postgres.</summary>
    public const string BinDirectoryVariable = "TEST_POSTGRES_BIN_DIR";

    public const string ServiceUser = "postgres";

    private static readonly Lazy<PostgresBinaries?> s_found = new(FindCore);

    private PostgresBinaries(string directory) => Directory = directory;

    public string Directory { get; }

    public string InitDb => Path.Combine(Directory, "initdb");

    public string PgCtl => Path.Combine(Directory, "pg_ctl");

    /// <summary>Only replication (<see cref="PostgresReplicationPair"/>) needs it; checked there.</summary>
    public string PgBaseBackup => Path.Combine(Directory, "pg_basebackup");

    /// <summary>True when commands are run through <c>runuser -u postgres</c> (the test process is root).</summary>
    public static bool RunsAsServiceUser => Prerequisites.IsRoot;

    /// <summary>Checks prerequisites (skip locally, fail under CI) and returns the binaries.</summary>
    public static PostgresBinaries Require()
    {
        var binaries = s_found.Value;
        Prerequisites.Require(binaries is not null,
            $"PostgreSQL server binaries (initdb, pg_ctl, postgres) in ${BinDirectoryVariable}, on PATH or in /usr/lib/postgresql/*/bin " +
            $"(or point ${PostgresServer.ExternalUrlVariable} at a running server)");
        if (RunsAsServiceUser)
        {
            Prerequisites.Require(Prerequisites.FindExecutable("runuser") is not null, "'runuser' (root runs PostgreSQL as the 'postgres' user)");
            Prerequisites.Require(ServiceUserExists(), "the 'postgres' OS user (PostgreSQL refuses to run as root)");
        }
        return binaries!;
    }

    private static PostgresBinaries? FindCore()
    {
        var overridden = Environment.GetEnvironmentVariable(BinDirectoryVariable);
        if (!string.IsNullOrWhiteSpace(overridden))
        {
            return IsComplete(overridden) ? new PostgresBinaries(overridden) : null;
        }
        if (Prerequisites.FindExecutable("initdb") is { } initdb)
        {
            var resolved = File.ResolveLinkTarget(initdb, returnFinalTarget: true)?.FullName ?? initdb;
            foreach (var candidate in new[] { Path.GetDirectoryName(resolved), Path.GetDirectoryName(initdb) })
            {
                if (candidate is not null && IsComplete(candidate))
                {
                    return new PostgresBinaries(candidate);
                }
            }
        }
        foreach (var root in new[] { "/usr/lib/postgresql", "/usr/local/lib/postgresql" })
        {
            if (!System.IO.Directory.Exists(root))
            {
                continue;
            }
            var newest = System.IO.Directory.EnumerateDirectories(root)
                .Select(dir => (Dir: Path.Combine(dir, "bin"), Version: double.TryParse(Path.GetFileName(dir), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(x => IsComplete(x.Dir))
                .OrderByDescending(x => x.Version)
                .FirstOrDefault();
            if (newest.Dir is not null)
            {
                return new PostgresBinaries(newest.Dir);
            }
        }
        return null;
    }

    /// <summary>Runs one of the PostgreSQL tools as the server's OS user.</summary>
    public Task<ProcessResult> RunAsync(string executable, IEnumerable<string> arguments, TimeSpan timeout) =>
        RunsAsServiceUser
            ? ProcessRunner.RunAsync("runuser", ["-u", ServiceUser, "--", executable, .. arguments], null, timeout)
            : ProcessRunner.RunAsync(executable, arguments, null, timeout);

    /// <summary>Makes a directory the server's OS user owns (a no-op when that is the current user).</summary>
    public static async Task GiveToServiceUserAsync(string path)
    {
        if (RunsAsServiceUser)
        {
            (await ProcessRunner.RunAsync("chown", [$"{ServiceUser}:", path], null, TimeSpan.FromSeconds(10)))
                .EnsureSuccess($"chown {ServiceUser}: {path}");
        }
    }

    private static bool IsComplete(string directory) =>
        File.Exists(Path.Combine(directory, "initdb")) && File.Exists(Path.Combine(directory, "pg_ctl")) && File.Exists(Path.Combine(directory, "postgres"));

    private static bool ServiceUserExists()
    {
        try
        {
            return File.ReadLines("/etc/passwd").Any(line => line.StartsWith(ServiceUser + ":", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
