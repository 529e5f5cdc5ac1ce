namespace Vpn.Domain.Usage;

/// <summary>
/// A calendar billing period: from the anchor day of one month (00:00 UTC) to the anchor day of the next. An anchor past
/// a month's end falls on its last day (anchored on the 31st: 28 or 29 February, 30 April, 31 May). The same rule as the
/// database's billing_period_start and billing_period_end (migration 0008).
/// </summary>
public readonly record struct BillingPeriod(DateTimeOffset Start, DateTimeOffset End)
{
    /// <summary>The period anchored on <paramref name="anchorDay"/> (1-31) that holds <paramref name="at"/>.</summary>
    public static BillingPeriod Containing(int anchorDay, DateTimeOffset at)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(anchorDay, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(anchorDay, 31);
        var utc = at.UtcDateTime;
        var start = AnchorIn(utc.Year, utc.Month, anchorDay);
        if (utc < start)
        {
            var previous = new DateTime(utc.Year, utc.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(-1);
            start = AnchorIn(previous.Year, previous.Month, anchorDay);
        }
        var next = start.AddMonths(1);
        return new BillingPeriod(new DateTimeOffset(start), new DateTimeOffset(AnchorIn(next.Year, next.Month, anchorDay)));
    }

    /// <summary>The anchor day a customer's periods follow: the UTC day of month of its first subscription.</summary>
    public static int AnchorDayOf(DateTimeOffset firstSubscribedAt) => firstSubscribedAt.UtcDateTime.Day;

    private static DateTime AnchorIn(int year, int month, int anchorDay) =>
        new(year, month, Math.Min(anchorDay, DateTime.DaysInMonth(year, month)), 0, 0, 0, DateTimeKind.Utc);
}

/// <summary>A customer's data use in its current billing period. <see cref="LimitBytes"/> null: the plan is unlimited.</summary>
public sealed record DataUsage(long UsedBytes, long? LimitBytes, BillingPeriod Period)
{
    public bool Exhausted => LimitBytes is { } limit && UsedBytes >= limit;
}
