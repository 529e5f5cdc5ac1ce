using Vpn.Core.Netlink;

namespace Vpn.Core.Nat.Native;

/// <summary>
/// The nf_tables conversation over one NETLINK_NETFILTER socket: a batch and its acknowledgements, a dump, a single
/// get. Failures are <see cref="NetlinkException"/>s; the driver turns them into <see cref="NatException"/>s.
/// </summary>
internal sealed class NfTablesSocket : IDisposable
{
    private const int Enoent = 2;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private readonly NetlinkSocket _socket;

    private NfTablesSocket(NetlinkSocket socket) => _socket = socket;

    /// <param name="networkNamespacePath">Null for the process's own namespace.</param>
    public static NfTablesSocket Open(string? networkNamespacePath) => new(networkNamespacePath is null
        ? NetlinkSocket.Open(LibC.NetlinkNetfilter)
        : NetworkNamespaceThread.Run(networkNamespacePath, () => NetlinkSocket.Open(LibC.NetlinkNetfilter)));

    /// <summary>
    /// Sends the batch and reads one acknowledgement per message. The kernel runs the whole batch inside sendto and
    /// queues every answer before it returns: an error for each failing message (it keeps going after the first, and
    /// then aborts the transaction), an ack for each other one; an error for the batch itself (no permission, or the
    /// commit failed) carries the begin message's sequence number.
    /// </summary>
    /// <returns>The failing messages' sequence numbers with their errno and the kernel's extended-ack text, in batch order; empty on success.</returns>
    public IReadOnlyList<(uint Sequence, int Errno, string? Message)> Execute(NfTablesBatch batch)
    {
        // Room for the whole batch in one datagram and for every ack (nft sizes its receive buffer the same way).
        var sequences = batch.Sequences;
        _socket.EnsureBuffers(Math.Max(batch.Bytes.Length * 2, 256 * 1024), Math.Max(sequences.Count * 1024, 256 * 1024));
        _socket.Send("nf_tables batch", batch.Bytes);
        var pending = new HashSet<uint>(sequences);
        var failures = new SortedDictionary<uint, (int, string?)>();
        var deadline = Deadline();
        while (pending.Count > 0)
        {
            ReadOnlySpan<byte> datagram = _socket.Buffer.AsSpan(0, _socket.Receive("nf_tables batch", deadline));
            while (NetlinkMessages.TryReadMessage(ref datagram, out var header, out var payload))
            {
                if (header.Type != NetlinkMessages.NlmsgError)
                {
                    continue;
                }
                var (errno, message) = NetlinkMessages.ReadError(header.Flags, payload);
                if (header.Sequence == batch.BeginSequence && errno != 0)
                {
                    // The batch as a whole was refused: no per-message answers are coming.
                    failures[header.Sequence] = (errno, message);
                    pending.Clear();
                    break;
                }
                if (pending.Remove(header.Sequence) && errno != 0)
                {
                    failures[header.Sequence] = (errno, message);
                }
            }
        }
        return failures.Select(f => (f.Key, f.Value.Item1, f.Value.Item2)).ToList();
    }

    /// <summary>
    /// Runs a dump, handing each reply message (type, payload) to <paramref name="onMessage"/>. Returns false when the
    /// kernel flagged the dump as interrupted (NLM_F_DUMP_INTR: the ruleset changed meanwhile), so the caller repeats it.
    /// </summary>
    public bool Dump(string operation, byte[] request, uint sequence, Action<ushort, ReadOnlySpan<byte>> onMessage)
    {
        _socket.Send(operation, request);
        var consistent = true;
        var deadline = Deadline();
        while (true)
        {
            ReadOnlySpan<byte> datagram = _socket.Buffer.AsSpan(0, _socket.Receive(operation, deadline));
            while (NetlinkMessages.TryReadMessage(ref datagram, out var header, out var payload))
            {
                if (header.Sequence != sequence)
                {
                    continue;
                }
                consistent &= (header.Flags & NetlinkMessages.NlmFDumpIntr) == 0;
                switch (header.Type)
                {
                    case NetlinkMessages.NlmsgDone:
                        // NLMSG_DONE carries the dump's final status as an int (0 or a negated errno).
                        var status = payload.Length >= 4 ? -BitConverter.ToInt32(payload) : 0;
                        return status == 0 ? consistent : throw NetlinkException.FromErrno(operation, status);
                    case NetlinkMessages.NlmsgError:
                        var (errno, message) = NetlinkMessages.ReadError(header.Flags, payload);
                        if (errno != 0)
                        {
                            throw NetlinkException.FromErrno(operation, errno, message);
                        }
                        break;
                    default:
                        onMessage(header.Type, payload);
                        break;
                }
            }
        }
    }

    /// <summary>A single acknowledged request; false when the kernel answers ENOENT (the object does not exist).</summary>
    public bool Get(string operation, byte[] request, uint sequence)
    {
        _socket.Send(operation, request);
        var deadline = Deadline();
        while (true)
        {
            ReadOnlySpan<byte> datagram = _socket.Buffer.AsSpan(0, _socket.Receive(operation, deadline));
            while (NetlinkMessages.TryReadMessage(ref datagram, out var header, out var payload))
            {
                if (header.Sequence != sequence || header.Type != NetlinkMessages.NlmsgError)
                {
                    continue;
                }
                var (errno, message) = NetlinkMessages.ReadError(header.Flags, payload);
                return errno switch
                {
                    0 => true,
                    Enoent => false,
                    _ => throw NetlinkException.FromErrno(operation, errno, message),
                };
            }
        }
    }

    public void Dispose() => _socket.Dispose();

    private static long Deadline() => Environment.TickCount64 + (long)Timeout.TotalMilliseconds;
}
