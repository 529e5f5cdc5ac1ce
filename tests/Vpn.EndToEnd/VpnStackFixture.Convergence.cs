using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Npgsql;

namespace Vpn.EndToEnd;

/// <summary>
/// The truth and the node, side by side: the database's active sessions on the node (read from PostgreSQL directly,
/// never through entry) against the peers of the node's WireGuard device (<c>wg show &lt;iface&gt; allowed-ips</c>, which,
/// unlike <c>dump</c>, never prints the private key). Plus core's GetNodeStatus; entry's readiness, sessions and the
/// client are in VpnStackFixture.Sessions.cs.
/// </summary>
public partial class VpnStackFixture
{
    /// <summary>How long the device must stay equal to the database to count as converged (over two reconcile passes).</summary>
    public TimeSpan StableFor => TimeSpan.FromSeconds(2 * CoreIntervalSeconds + 0.5);

    /// <summary>The session the client is configured from right now (null before the first).</summary>
    public ClientSession? CurrentClient { get; private set; }

    // ---------------------------------------------------------------- the truth (PostgreSQL)

    public NpgsqlConnection OpenDatabase() =>
        // Unpooled: after a PostgreSQL restart a pooled connection would fail once; the tests only want the data.
        new(new NpgsqlConnectionStringBuilder(DatabaseConnectionString) { Pooling = false, Timeout = 10, CommandTimeout = 10 }.ConnectionString);

    /// <summary>
    /// <c>device_public_key → allowed IPs</c> the node must hold for the sessions the database says are active on it, in
    /// <see cref="ReadNodePeersAsync"/>'s form: the session's IPv4 /32 and its IPv6 /128 (<c>assigned_address_v6</c>;
    /// for a session without one, the address core pairs with the IPv4 one anyway: <see cref="PairedIpv6"/>).
    /// </summary>
    public async Task<IReadOnlyDictionary<string, string>> DatabaseActivePeersAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = OpenDatabase();
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "select device_public_key, assigned_address, assigned_address_v6 from sessions where node_id = @n and state = 'active'", connection);
        command.Parameters.AddWithValue("n", NodeId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var peers = new Dictionary<string, string>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken))
        {
            var key = reader.GetString(0);
            var address = reader.IsDBNull(1) ? "(null)"
                : AllowedIps([reader.GetString(1), reader.IsDBNull(2) ? PairedIpv6(reader.GetString(1)) : reader.GetString(2)]);
            if (!peers.TryAdd(key, address))
            {
                peers[key] += " DUPLICATE-KEY " + address;
            }
        }
        return peers;
    }

    /// <summary>State of every session of the customer (id, state, node, address), oldest first.</summary>
    public async Task<IReadOnlyList<(Guid Id, string State, Guid NodeId, string? Address)>> SessionsOfCustomerAsync(Guid customerId,
        CancellationToken cancellationToken = default)
    {
        await using var connection = OpenDatabase();
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "select id, state, node_id, assigned_address from sessions where customer_id = @c order by created_at", connection);
        command.Parameters.AddWithValue("c", customerId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var sessions = new List<(Guid, string, Guid, string?)>();
        while (await reader.ReadAsync(cancellationToken))
        {
            sessions.Add((reader.GetGuid(0), reader.GetString(1), reader.GetGuid(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
        }
        return sessions;
    }

    /// <summary>Prefixes as <c>wg show allowed-ips</c> lists them here: ordinal order, comma-joined (IPv4 first).</summary>
    public static string AllowedIps(IEnumerable<string> prefixes) => string.Join(',', prefixes.Order(StringComparer.Ordinal));

    /// <summary>
    /// The IPv6 /128 core pairs with an IPv4 /32 of WG_CLIENT_POOL: the same offset in WG_CLIENT_POOL_V6 (the default
    /// fd64:6400::/64 here), e.g. 10.64.0.2/32 → fd64:6400::2/128.
    /// </summary>
    public string PairedIpv6(string ipv4Prefix)
    {
        ArgumentNullException.ThrowIfNull(ipv4Prefix);
        var pool = IPNetwork.Parse(NodeLab.ClientPool);
        var address = IPAddress.Parse(ipv4Prefix.Split('/')[0]);
        var offset = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes())
            - System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(pool.BaseAddress.GetAddressBytes());
        var bytes = IPAddress.Parse("fd64:6400::").GetAddressBytes();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), offset);
        return $"{new IPAddress(bytes)}/128";
    }

    /// <summary>Counts of the node's sessions by state, for messages.</summary>
    public async Task<string> DescribeSessionStatesAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = OpenDatabase();
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand(
                "select state, count(*) from sessions where node_id = @n group by state order by state", connection);
            command.Parameters.AddWithValue("n", NodeId);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            var parts = new List<string>();
            while (await reader.ReadAsync(cancellationToken))
            {
                parts.Add($"{reader.GetString(0)}={reader.GetInt64(1)}");
            }
            return parts.Count == 0 ? "(no sessions)" : string.Join(", ", parts);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return $"(database unreadable: {e.Message})";
        }
    }

    /// <summary>Waits until core's heartbeat (healthy, i.e. synced) has reached the database after <paramref name="since"/>.</summary>
    public async Task WaitForNodeHeartbeatAsync(DateTimeOffset since, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var last = "no row";
        await VpnLab.WaitUntilAsync(async () =>
        {
            try
            {
                await using var connection = OpenDatabase();
                await connection.OpenAsync(cancellationToken);
                await using var command = new NpgsqlCommand("select healthy, last_heartbeat_at from vpn_nodes where id = @n", connection);
                command.Parameters.AddWithValue("n", NodeId);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                if (!await reader.ReadAsync(cancellationToken))
                {
                    return false;
                }
                var healthy = reader.GetBoolean(0);
                DateTimeOffset? beat = reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1);
                last = $"healthy={healthy}, last_heartbeat_at={beat?.ToString("O", CultureInfo.InvariantCulture) ?? "null"}";
                // Clocks are the same machine's; a second of slack for rounding.
                return healthy && beat >= since - TimeSpan.FromSeconds(1);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                last = e.Message;
                return false;
            }
        }, timeout, () => $"core's heartbeat never reported node {NodeId} healthy after {since:O} (last: {last})", cancellationToken);
    }

    // ---------------------------------------------------------------- the node

    /// <summary>
    /// <c>public key → allowed IPs</c> (comma-joined, sorted; "" for none) of the node's device right now; null when the
    /// device cannot be read (e.g. wireguard-go is restarting), with the reason in <paramref name="error"/>.
    /// </summary>
    public async Task<(IReadOnlyDictionary<string, string>? Peers, string Error)> ReadNodePeersAsync()
    {
        var result = await NodeLab.Node.ExecAsync("wg", "show", NodeLab.NodeInterface, "allowed-ips");
        if (result.ExitCode != 0)
        {
            return (null, $"wg show {NodeLab.NodeInterface} allowed-ips failed ({result.ExitCode}): {result.StandardError.Trim()}");
        }
        var peers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            var allowed = fields.Skip(1).Where(f => f != "(none)").Order(StringComparer.Ordinal);
            peers[fields[0]] = string.Join(',', allowed);
        }
        return (peers, "");
    }

    /// <summary>Null when the node's peers equal the database's active sessions (same keys, each with exactly its /32 and /128).</summary>
    public static string? DescribeDifference(IReadOnlyDictionary<string, string> database, IReadOnlyDictionary<string, string> node)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(node);
        var sb = new StringBuilder();
        foreach (var (key, address) in database.OrderBy(p => p.Value, StringComparer.Ordinal))
        {
            if (!node.TryGetValue(key, out var allowed))
            {
                sb.AppendLine($"  MISSING on node: {key} (active in the database with {address})");
            }
            else if (allowed != address)
            {
                sb.AppendLine($"  WRONG allowed-ips: {key} has [{allowed}] on the node, the database says {address}");
            }
        }
        foreach (var (key, allowed) in node.Where(p => !database.ContainsKey(p.Key)).OrderBy(p => p.Value, StringComparer.Ordinal))
        {
            sb.AppendLine($"  EXTRA on node: {key} [{allowed}] (no active session in the database)");
        }
        return sb.Length == 0 ? null : sb.ToString();
    }

    /// <summary>
    /// Polls until <c>wg show</c> equals the database's active set and stays equal for <see cref="StableFor"/>; fails with
    /// the last difference and all diagnostics otherwise. Returns the converged set and how long it took.
    /// </summary>
    public async Task<(IReadOnlyDictionary<string, string> Peers, TimeSpan Took)> WaitForConvergenceAsync(string situation, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        var lastDifference = "(never compared)";
        TimeSpan? equalSince = null;
        TimeSpan? firstEqual = null;
        while (true)
        {
            string? difference;
            IReadOnlyDictionary<string, string>? database = null;
            try
            {
                database = await DatabaseActivePeersAsync(cancellationToken);
                var (node, error) = await ReadNodePeersAsync();
                difference = node is null ? "  " + error : DescribeDifference(database, node);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                difference = $"  database unreadable: {e.Message}";
            }
            if (difference is null)
            {
                equalSince ??= watch.Elapsed;
                firstEqual ??= watch.Elapsed;
                if (watch.Elapsed - equalSince >= StableFor)
                {
                    Step($"converged ({situation}): {database!.Count} active peer(s), equal after {firstEqual.Value.TotalSeconds:0.0}s");
                    return (database!, firstEqual.Value);
                }
            }
            else
            {
                equalSince = null;
                lastDifference = difference;
            }
            if (watch.Elapsed > timeout)
            {
                await FailAsync($"{situation}: the node's WireGuard peers did not converge to the database's active sessions within " +
                    $"{timeout.TotalSeconds:0}s (stable for {StableFor.TotalSeconds:0.0}s required).\nLast difference:\n{lastDifference}" +
                    $"sessions on the node by state: {await DescribeSessionStatesAsync(CancellationToken.None)}\n" +
                    $"core status: {await DescribeNodeStatusAsync()}");
            }
            await Task.Delay(250, cancellationToken);
        }
    }

    // ---------------------------------------------------------------- core's own view

    /// <summary>GetNodeStatus over core's unix socket (a fresh channel: core may have been restarted).</summary>
    public Task<NodeStatus> GetNodeStatusAsync(CancellationToken cancellationToken = default) =>
        GetNodeStatusAsync(TimeSpan.FromSeconds(15), cancellationToken);

    public async Task<NodeStatus> GetNodeStatusAsync(TimeSpan deadline, CancellationToken cancellationToken)
    {
        var socketPath = CoreSocketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(5),
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        var client = new VpnControl.VpnControlClient(channel);
        return await client.GetNodeStatusAsync(new GetNodeStatusRequest(), deadline: DateTime.UtcNow + deadline, cancellationToken: cancellationToken);
    }

    /// <summary>GetNodeStatus as one line for messages (never throws).</summary>
    public async Task<string> DescribeNodeStatusAsync()
    {
        if (!CoreRunning)
        {
            return "(core not running)";
        }
        try
        {
            var s = await GetNodeStatusAsync(CancellationToken.None);
            return Describe(s);
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or SocketException or IOException or OperationCanceledException)
        {
            return $"(GetNodeStatus failed: {e.Message})";
        }
    }

    public static string Describe(NodeStatus s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return $"healthy={s.Healthy} synced={s.Synced} peers={s.ActivePeers} passes={s.ReconcilePasses} failures={s.ReconcileFailures} " +
            $"added={s.ReconcilePeersAdded} removed={s.ReconcilePeersRemoved} corrected={s.ReconcilePeersCorrected} " +
            $"reinitializations={s.DeviceReinitializations} last_success_ms={s.LastReconcileUnixMs}";
    }

    /// <summary>Polls GetNodeStatus until <paramref name="condition"/> holds; fails with the last status otherwise.</summary>
    public async Task<NodeStatus> WaitForNodeStatusAsync(Func<NodeStatus, bool> condition, string what, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        NodeStatus? status = null;
        var last = "(no answer yet)";
        try
        {
            await VpnLab.WaitUntilAsync(async () =>
            {
                try
                {
                    status = await GetNodeStatusAsync(cancellationToken);
                    last = Describe(status);
                    return condition(status);
                }
                catch (Exception e) when (e is RpcException or HttpRequestException or SocketException or IOException)
                {
                    last = $"GetNodeStatus failed: {e.Message}";
                    return false;
                }
            }, timeout, () => "", cancellationToken);
        }
        catch (TimeoutException)
        {
            await FailAsync($"core's GetNodeStatus never showed {what} within {timeout.TotalSeconds:0}s; last: {last}");
        }
        return status!;
    }
}
