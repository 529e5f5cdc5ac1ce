using System.Globalization;
using Microsoft.Extensions.Logging;
using Vpn.Core.Netlink;

namespace Vpn.Core.Nat.Native;

/// <summary>
/// The <c>native</c> driver: programs the table with hand-encoded nf_tables netlink messages, without the nft tool.
/// Apply is one batch (one kernel transaction) that replaces the whole table, followed by a read-back of its chains
/// and rules. Each operation opens its own NETLINK_NETFILTER socket (inside the configured network namespace), so
/// no state is carried between calls and concurrent calls do not share a socket. The kernel answers within the send
/// call, so the operations complete synchronously.
/// </summary>
public sealed partial class NativeNatDriver : INatDriver
{
    private const int Eperm = 1;
    private const int Enoent = 2;
    private const int Eopnotsupp = 95;
    private const int DumpAttempts = 3;

    // Requests after a batch on the same socket: a number no batch message uses, so stray batch answers are ignored.
    private const uint DumpSequence = uint.MaxValue;

    private readonly FirewallTable _table;
    private readonly ILogger<NativeNatDriver> _logger;
    private readonly string? _networkNamespacePath;
    private readonly NfTablesBatch _apply;
    private readonly NfTablesBatch _remove;

    /// <param name="networkNamespacePath">A namespace file such as <c>/var/run/netns/NAME</c>; the process's own namespace when null.</param>
    /// <exception cref="ArgumentException">A rule of the table cannot be encoded.</exception>
    public NativeNatDriver(FirewallTable table, ILogger<NativeNatDriver> logger, string? networkNamespacePath = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(logger);
        _table = table;
        _logger = logger;
        _networkNamespacePath = networkNamespacePath;
        // Encoded once: every apply sends the same bytes (each operation uses a fresh socket, so sequence numbers can repeat).
        _apply = NfTablesMessages.Apply(table);
        _remove = NfTablesMessages.Remove(table.Name);
    }

    public string Name => "native";

    public IReadOnlyList<string> NativeFeatures { get; } = ["nftables-netlink-batch", "atomic-replace", "counters", "read-back-verify"];

    public Task ApplyAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using (var socket = Open("apply"))
        {
            Execute(socket, _apply, "apply");
            Verify(socket);
        }
        LogApplied(_logger, _table.Name, _table.RuleCount);
        return Task.CompletedTask;
    }

    public Task RemoveAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using (var socket = Open("remove"))
        {
            Execute(socket, _remove, "remove");
        }
        LogRemoved(_logger, _table.Name);
        return Task.CompletedTask;
    }

    public Task<bool> IsPresentAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var socket = Open("get table");
        return Task.FromResult(Talk("get table", () => socket.Get($"GETTABLE inet {_table.Name}", NfTablesMessages.GetTable(DumpSequence, _table.Name), DumpSequence)));
    }

    /// <summary>Every counter object of the table, in the kernel's order; empty when the table does not exist.</summary>
    public Task<IReadOnlyList<FirewallCounter>> ReadCountersAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var socket = Open("read counters");
        var counters = new List<FirewallCounter>();
        DumpConsistently(socket, "read counters", NfTablesMessages.DumpCounters(DumpSequence, _table.Name), counters.Clear, (type, payload) =>
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
        });
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
        DumpConsistently(socket, "read back chains", NfTablesMessages.DumpChains(DumpSequence), chains.Clear, (type, payload) =>
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
        DumpConsistently(socket, "read back rules", NfTablesMessages.DumpRules(DumpSequence, _table.Name), rules.Clear, (type, payload) =>
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
        var meaning = batch.Meanings.GetValueOrDefault(sequence, $"message {sequence}");
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

    /// <param name="request">A dump request with sequence number <see cref="DumpSequence"/>.</param>
    private static void DumpConsistently(NfTablesSocket socket, string what, byte[] request, Action reset, Action<ushort, ReadOnlySpan<byte>> onMessage)
    {
        for (var attempt = 1; ; attempt++)
        {
            reset();
            if (Talk(what, () => socket.Dump(what, request, DumpSequence, onMessage)))
            {
                return;
            }
            if (attempt == DumpAttempts)
            {
                throw new NatException($"NAT {what}: the ruleset kept changing during the dump ({DumpAttempts} attempts).");
            }
        }
    }

    private bool IsOurs(ReadOnlySpan<byte> payload, Dictionary<ushort, byte[]> attributes, ushort tableAttribute) =>
        NfTablesMessages.Family(payload) == NfTables.FamilyInet && NfTablesMessages.ReadString(attributes, tableAttribute) == _table.Name;

    private NfTablesSocket Open(string what) => Talk(what, () => NfTablesSocket.Open(_networkNamespacePath));

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
