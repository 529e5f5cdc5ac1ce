using System.Globalization;
using Microsoft.Extensions.Logging;
using Vpn.Core.Netlink;

namespace Vpn.Core.Nat.Native;

/// <summary>
/// The <c>native</c> driver: programs the table with hand-encoded nf_tables netlink messages, without the nft tool.
/// Apply is one batch (one kernel transaction) that replaces the whole table, followed by a read-back of its chains
/// and rules. The kernel answers within the send call, so the operations complete synchronously; they are serialised.
/// <para>
/// Sockets: in the process's own namespace one NETLINK_NETFILTER socket is kept for the driver's life. Closing a socket
/// that ran a transaction is the expensive part of an apply: on release nf_tables flushes the pending destroy work of
/// the replaced table (under its commit mutex), which waits for an RCU grace period (~10 ms here, against ~1.5 ms for
/// the batch itself); a socket kept open leaves that work to run in the background. With a namespace path a socket is
/// opened per operation instead, so a path that is re-bound to a new namespace is followed rather than a dead
/// namespace silently programmed.
/// </para>
/// </summary>
public sealed partial class NativeNatDriver : INatDriver, IDisposable
{
    private const int Eperm = 1;
    private const int Enoent = 2;
    private const int Eopnotsupp = 95;
    private const int DumpAttempts = 3;

    private readonly FirewallTable _table;
    private readonly ILogger<NativeNatDriver> _logger;
    private readonly string? _networkNamespacePath;
    private readonly NfTablesBatch _apply;
    private readonly NfTablesBatch _remove;
    private readonly Lock _lock = new();
    private NfTablesSocket? _shared;
    private uint _sequence;
    private bool _disposed;

    /// <param name="networkNamespacePath">
    /// A namespace file such as <c>/var/run/netns/NAME</c>. When null, the namespace of the thread that makes the first
    /// call (the process's own, in core), whose socket is then kept until <see cref="Dispose"/> or process exit.
    /// </param>
    /// <exception cref="ArgumentException">A rule of the table cannot be encoded.</exception>
    public NativeNatDriver(FirewallTable table, ILogger<NativeNatDriver> logger, string? networkNamespacePath = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(logger);
        _table = table;
        _logger = logger;
        _networkNamespacePath = networkNamespacePath;
        // Encoded once (and so validated here); each send only renumbers a copy.
        _apply = NfTablesMessages.Apply(table);
        _remove = NfTablesMessages.Remove(table.Name);
    }

    public string Name => "native";

    public IReadOnlyList<string> NativeFeatures { get; } = ["nftables-netlink-batch", "atomic-replace", "counters", "read-back-verify"];

    public Task ApplyAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Use("apply", socket =>
        {
            Execute(socket, Numbered(_apply), "apply");
            Verify(socket);
            return true;
        });
        LogApplied(_logger, _table.Name, _table.RuleCount);
        return Task.CompletedTask;
    }

    public Task RemoveAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Use("remove", socket =>
        {
            Execute(socket, Numbered(_remove), "remove");
            return true;
        });
        LogRemoved(_logger, _table.Name);
        return Task.CompletedTask;
    }

    public Task<bool> IsPresentAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(Use("get table", socket =>
        {
            var sequence = NextSequence(1);
            return Talk("get table", () => socket.Get($"GETTABLE inet {_table.Name}", NfTablesMessages.GetTable(sequence, _table.Name), sequence));
        }));
    }

    /// <summary>Every counter object of the table, in the kernel's order; empty when the table does not exist.</summary>
    public Task<IReadOnlyList<FirewallCounter>> ReadCountersAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var counters = new List<FirewallCounter>();
        Use("read counters", socket => DumpConsistently(socket, "read counters", seq => NfTablesMessages.DumpCounters(seq, _table.Name), counters.Clear, (type, payload) =>
        {
            var attributes = NfTablesMessages.ReadAttributes(payload);
            if (type != NfTables.Type(NfTables.NewObj) || !IsOurs(payload, attributes, NfTables.ObjTable)
                || NfTablesMessages.ReadUInt32(attributes, NfTables.ObjType) != NfTables.ObjectCounter
                || !attributes.TryGetValue(NfTables.ObjData, out var data))
            {
                return;
            }
            var values = NfTablesMessages.ReadAttributes(data, skip: 0);
            counters.Add(new FirewallCounter(NfTablesMessages.ReadString(attributes, NfTables.ObjName) ?? "",
                NfTablesMessages.ReadUInt64(values, NfTables.CounterPackets) ?? 0, NfTablesMessages.ReadUInt64(values, NfTables.CounterBytes) ?? 0));
        }));
        return Task.FromResult<IReadOnlyList<FirewallCounter>>(counters);
    }

    /// <summary>
    /// Reads the table back and compares it with what was sent: every chain present with its type, hook and priority,
    /// no other chain, and each chain's number of rules. Catches a kernel that accepted the batch but holds something
    /// else (another writer in between, or a kernel that ignored an attribute).
    /// </summary>
    private void Verify(NfTablesSocket socket)
    {
        var chains = new Dictionary<string, ChainState>(StringComparer.Ordinal);
        DumpConsistently(socket, "read back chains", NfTablesMessages.DumpChains, chains.Clear, (type, payload) =>
        {
            var attributes = NfTablesMessages.ReadAttributes(payload);
            if (type != NfTables.Type(NfTables.NewChain) || !IsOurs(payload, attributes, NfTables.ChainTable))
            {
                return;
            }
            var hook = attributes.TryGetValue(NfTables.ChainHook, out var nested) ? NfTablesMessages.ReadAttributes(nested, skip: 0) : null;
            chains[NfTablesMessages.ReadString(attributes, NfTables.ChainName) ?? ""] = new ChainState(
                hook is null ? null : NfTablesMessages.ReadUInt32(hook, NfTables.HookNumber),
                hook is null ? null : (int?)NfTablesMessages.ReadUInt32(hook, NfTables.HookPriority),
                NfTablesMessages.ReadString(attributes, NfTables.ChainType));
        });
        var rules = new Dictionary<string, int>(StringComparer.Ordinal);
        DumpConsistently(socket, "read back rules", seq => NfTablesMessages.DumpRules(seq, _table.Name), rules.Clear, (type, payload) =>
        {
            var attributes = NfTablesMessages.ReadAttributes(payload);
            if (type == NfTables.Type(NfTables.NewRule) && IsOurs(payload, attributes, NfTables.RuleTable))
            {
                var chain = NfTablesMessages.ReadString(attributes, NfTables.RuleChain) ?? "";
                rules[chain] = rules.GetValueOrDefault(chain) + 1;
            }
        });

        var problems = Differences(_table, chains, rules);
        if (problems.Count > 0)
        {
            throw new NatException($"NAT apply: table inet {_table.Name} read back differs from what was applied: {string.Join("; ", problems)}.");
        }
    }

    /// <summary>A chain as the kernel lists it: hook number, priority and type are null for a regular chain.</summary>
    internal readonly record struct ChainState(uint? Hook, int? Priority, string? Type);

    /// <summary>What differs between the table and the kernel's chains and per-chain rule counts; empty when they match.</summary>
    internal static IReadOnlyList<string> Differences(FirewallTable expected, IReadOnlyDictionary<string, ChainState> chains, IReadOnlyDictionary<string, int> rules)
    {
        var problems = new List<string>();
        foreach (var chain in expected.Chains)
        {
            if (!chains.TryGetValue(chain.Name, out var actual))
            {
                problems.Add($"chain {chain.Name} is missing");
                continue;
            }
            var wanted = chain.Base is { } hook ? new ChainState(NfTables.HookNumberOf(hook.Hook), hook.Priority, NfTables.TypeName(hook.Type)) : default;
            if (actual != wanted)
            {
                problems.Add($"chain {chain.Name} is {Describe(actual)}, expected {Describe(wanted)}");
            }
            var count = rules.GetValueOrDefault(chain.Name);
            if (count != chain.Rules.Count)
            {
                problems.Add($"chain {chain.Name} has {count} rules, expected {chain.Rules.Count}");
            }
        }
        problems.AddRange(chains.Keys.Except(expected.Chains.Select(c => c.Name)).Order(StringComparer.Ordinal).Select(name => $"unexpected chain {name}"));
        return problems;
    }

    private static string Describe(ChainState chain) => chain.Hook is null
        ? "a regular chain"
        : string.Create(CultureInfo.InvariantCulture, $"type {chain.Type} hook {chain.Hook} priority {chain.Priority}");

    private static void Execute(NfTablesSocket socket, NfTablesBatch batch, string what)
    {
        var failures = Talk(what, () => socket.Execute(batch));
        if (failures.Count == 0)
        {
            return;
        }
        // The first failure is the cause; later ones are usually its consequences (a rule in a chain that failed).
        var (sequence, errno, message) = failures[0];
        var meaning = batch.MeaningOf(sequence);
        var error = NetlinkException.FromErrno($"NAT {what} at '{meaning}'", errno, message);
        var more = failures.Count > 1 ? $"; {failures.Count - 1} later messages failed too" : "";
        throw new NatException($"{error.Message}{Hint(errno)}{more}; the batch is one transaction, so nothing was changed.", error);
    }

    private static string Hint(int errno) => errno switch
    {
        Eperm => " (CAP_NET_ADMIN is required)",
        Enoent => " (a table, chain, counter or kernel module it refers to is missing)",
        Eopnotsupp => " (the kernel lacks an nftables feature)",
        _ => "",
    };

    /// <param name="request">Builds the dump request for a sequence number (each attempt gets a fresh one).</param>
    private bool DumpConsistently(NfTablesSocket socket, string what, Func<uint, byte[]> request, Action reset, Action<ushort, ReadOnlySpan<byte>> onMessage)
    {
        for (var attempt = 1; ; attempt++)
        {
            reset();
            var sequence = NextSequence(1);
            if (Talk(what, () => socket.Dump(what, request(sequence), sequence, onMessage)))
            {
                return true;
            }
            if (attempt == DumpAttempts)
            {
                throw new NatException($"NAT {what}: the ruleset kept changing during the dump ({DumpAttempts} attempts).");
            }
        }
    }

    private bool IsOurs(ReadOnlySpan<byte> payload, Dictionary<ushort, byte[]> attributes, ushort tableAttribute) =>
        NfTablesMessages.Family(payload) == NfTables.FamilyInet && NfTablesMessages.ReadString(attributes, tableAttribute) == _table.Name;

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _shared?.Dispose();
            _shared = null;
        }
    }

    /// <summary>Runs one operation on the shared socket (opened on first use) or, with a namespace path, on a fresh one.</summary>
    private T Use<T>(string what, Func<NfTablesSocket, T> body)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var socket = _shared ?? Talk(what, () => NfTablesSocket.Open(_networkNamespacePath));
            var keep = _networkNamespacePath is null;
            try
            {
                var result = body(socket);
                _shared = keep ? socket : null;
                return result;
            }
            catch
            {
                // Whatever state the socket is in after a failure, the next operation starts on a new one.
                keep = false;
                _shared = null;
                throw;
            }
            finally
            {
                if (!keep)
                {
                    socket.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// Reserves <paramref name="count"/> consecutive sequence numbers (callers hold the lock). Never reused on a socket,
    /// so a late answer to an earlier request that timed out cannot be taken for the current one.
    /// </summary>
    private uint NextSequence(int count)
    {
        var first = unchecked(_sequence + 1);
        _sequence = unchecked(_sequence + (uint)count);
        return first;
    }

    // Begin, the command messages and end.
    private NfTablesBatch Numbered(NfTablesBatch batch) => batch.Renumbered(NextSequence(batch.Meanings.Count + 1));

    private static T Talk<T>(string what, Func<T> body)
    {
        try
        {
            return body();
        }
        catch (NetlinkException e)
        {
            throw new NatException($"NAT {what}: {e.Message}", e);
        }
    }

    [LoggerMessage(EventId = 4111, Level = LogLevel.Information, Message = "Filter and NAT table inet {Table} applied over netlink and verified ({Rules} rules)")]
    private static partial void LogApplied(ILogger logger, string table, int rules);

    [LoggerMessage(EventId = 4112, Level = LogLevel.Information, Message = "Filter and NAT table inet {Table} removed over netlink")]
    private static partial void LogRemoved(ILogger logger, string table);
}
