namespace Vpn.Harness.Postgres;

/// <summary>Streaming replication between two local clusters (see <see cref="PostgresReplicationPair"/>).</summary>
internal sealed partial class LocalCluster
{
    private static readonly TimeSpan s_baseBackupTimeout = TimeSpan.FromSeconds(120);

    /// <summary>
    /// A hot standby of <paramref name="primary"/>: <c>pg_basebackup -R</c> over TCP (initdb's pg_hba.conf trusts
    /// replication from 127.0.0.1) into a fresh directory, streaming from the physical replication slot
    /// <paramref name="slot"/> (created by the backup, so the primary keeps the WAL the standby has not received yet),
    /// then started on its own free port and socket directory.
    /// </summary>
    public static Task<LocalCluster> CreateStandbyAsync(PostgresBinaries binaries, LocalCluster primary, string slot) =>
        CreateAsync(binaries, cluster => cluster.BaseBackupAsync(primary, slot));

    /// <summary>Appends lines to postgresql.conf (the last occurrence of a setting wins); <see cref="ReloadAsync"/> applies most.</summary>
    public Task AppendSettingsAsync(params string[] lines) =>
        File.AppendAllTextAsync(ConfigFile, string.Join('\n', lines) + "\n");

    /// <summary><c>pg_ctl reload</c>: the server rereads its configuration files (SIGHUP).</summary>
    public async Task ReloadAsync()
    {
        var result = await _binaries.RunAsync(_binaries.PgCtl, ["reload", "-D", DataDirectory, "-s"], TimeSpan.FromSeconds(20));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"pg_ctl reload failed ({result.ExitCode}): {result.StandardError.Trim()}\n{LogSection()}");
        }
    }

    /// <summary><c>pg_ctl promote -w</c>: a standby ends recovery (replaying the WAL it has) and accepts writes.</summary>
    public async Task PromoteAsync()
    {
        var result = await _binaries.RunAsync(_binaries.PgCtl,
            ["promote", "-D", DataDirectory, "-w", "-t", Seconds(s_startTimeout), "-s"], s_startTimeout + TimeSpan.FromSeconds(10));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"pg_ctl promote failed ({result.ExitCode}): {result.StandardError.Trim()} {result.StandardOutput.Trim()}\n{LogSection()}");
        }
    }

    private async Task BaseBackupAsync(LocalCluster primary, string slot)
    {
        var portText = primary.Port.ToString(CultureInfo.InvariantCulture);
        var result = await _binaries.RunAsync(_binaries.PgBaseBackup,
            ["-D", DataDirectory, "-h", "127.0.0.1", "-p", portText, "-U", "postgres", "-X", "stream", "-R", "-C", "-S", slot,
             "-c", "fast", "--no-sync"], s_baseBackupTimeout);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"pg_basebackup from 127.0.0.1:{portText} into {DataDirectory} failed ({result.ExitCode}): {result.StandardError.Trim()} {result.StandardOutput.Trim()}\n{primary.LogSection()}");
        }
        // The copied postgresql.conf names the primary's socket directory and port; the lines appended here and the
        // port StartOnFreePortAsync appends win.
        await AppendSettingsAsync("", "# --- Vpn.Harness.Postgres standby ---", $"unix_socket_directories = '{BaseDirectory}'", "hot_standby = on",
            "wal_receiver_status_interval = 1s", "hot_standby_feedback = on");
    }
}
