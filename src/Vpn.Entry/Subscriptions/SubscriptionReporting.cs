using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;

namespace Vpn.Entry.Subscriptions;

/// <summary>Filters of the admin listing, count and export; null means "any". Both set: both must match.</summary>
public sealed record SubscriptionFilter(string? Status, string? PlanCode);

/// <summary>A customer's current snapshot (the open period) with the name of its plan, as the CSV export writes it.</summary>
public sealed record SubscriptionExportRow(Subscription Subscription, string PlanName);

/// <summary>One page of current snapshots in customer_id order; NextCursor is null on the last page.</summary>
public sealed record SubscriptionPage(IReadOnlyList<Subscription> Items, string? NextCursor);

public sealed record SubscriptionCount(long Count);

/// <summary>All periods of one customer, oldest first.</summary>
public sealed record SubscriptionHistory(IReadOnlyList<Subscription> Items);

/// <summary>
/// Read side of the admin subscription reports. "Current" means the open period of each customer (ended_at null; at
/// most one per customer), whatever its status. Plan limits and names are the plan's as it is now (joined, as
/// <see cref="IPlanStore.GetSubscriptionAsync"/> does). Order is by customer_id, compared as the 16 bytes of the
/// UUID in their textual order (PostgreSQL's uuid order).
/// </summary>
public interface ISubscriptionReportStore
{
    /// <summary>Up to <paramref name="limit"/> current snapshots with customer_id greater than <paramref name="after"/> (all when null).</summary>
    Task<IReadOnlyList<Subscription>> ListCurrentAsync(SubscriptionFilter filter, Guid? after, int limit, CancellationToken cancellationToken);

    Task<long> CountCurrentAsync(SubscriptionFilter filter, CancellationToken cancellationToken);

    /// <summary>
    /// Every matching current snapshot in customer_id order, produced as it is read (never all in memory). The query
    /// runs on the first MoveNextAsync, so a store outage surfaces before the caller has written anything.
    /// </summary>
    IAsyncEnumerable<SubscriptionExportRow> ExportCurrentAsync(SubscriptionFilter filter, CancellationToken cancellationToken);

    /// <summary>Every period of the customer, oldest first (started_at, then insertion order); empty when none.</summary>
    Task<IReadOnlyList<Subscription>> GetHistoryAsync(Guid customerId, CancellationToken cancellationToken);
}

/// <summary>
/// The opaque keyset cursor of the listing: base64url (no padding) of a version byte followed by the last returned
/// customer_id as 16 big-endian (RFC 9562) bytes. The version byte lets the format change without misreading old cursors.
/// </summary>
public static class SubscriptionCursor
{
    private const byte Version = 1;
    private const int Length = 17;

    public static string Encode(Guid lastCustomerId)
    {
        Span<byte> bytes = stackalloc byte[Length];
        bytes[0] = Version;
        lastCustomerId.TryWriteBytes(bytes[1..], bigEndian: true, out _);
        return Base64Url.EncodeToString(bytes);
    }

    public static bool TryDecode(string? cursor, [NotNullWhen(true)] out Guid? lastCustomerId)
    {
        lastCustomerId = null;
        // 17 bytes are 23 base64url characters; anything longer is not ours, whatever it decodes to.
        if (string.IsNullOrEmpty(cursor) || cursor.Length > 32)
        {
            return false;
        }
        Span<byte> bytes = stackalloc byte[24];
        if (!Base64Url.IsValid(cursor) || Base64Url.GetMaxDecodedLength(cursor.Length) > bytes.Length)
        {
            return false;
        }
        var status = Base64Url.DecodeFromChars(cursor, bytes, out var consumed, out var written);
        if (status != System.Buffers.OperationStatus.Done || consumed != cursor.Length || written != Length || bytes[0] != Version)
        {
            return false;
        }
        lastCustomerId = new Guid(bytes[1..Length], bigEndian: true);
        return true;
    }

    /// <summary>Compares as PostgreSQL orders uuid values: the 16 bytes in textual order.</summary>
    public static int Compare(Guid x, Guid y)
    {
        Span<byte> a = stackalloc byte[16];
        Span<byte> b = stackalloc byte[16];
        x.TryWriteBytes(a, bigEndian: true, out _);
        y.TryWriteBytes(b, bigEndian: true, out _);
        return a.SequenceCompareTo(b);
    }
}
