using System.Globalization;
using Vpn.Domain.Usage;

namespace Vpn.Domain.Tests.Usage;

/// <summary>
/// <see cref="BillingPeriod"/>: calendar periods anchored on a day of the month (UTC), the anchor falling on a shorter
/// month's last day. Properties over random anchors and instants (CsCheck, weighted to month ends, leap days and exact
/// midnights), then the named cases: the 31st across February (leap 2028, non-leap 2027) and April, December to January.
/// </summary>
public class BillingPeriodTests
{
    private static DateTimeOffset Utc(string text) =>
        DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    /// <summary>Anchors 1-31, the ones past some month's end (29-31) more often.</summary>
    internal static readonly Gen<int> Anchor = Gen.Frequency((3, Gen.Int[1, 31]), (2, Gen.Int[28, 31]));

    /// <summary>
    /// Instants from 1995 to 2105 (2100 is not a leap year), most on a month's first or last days, many at an exact
    /// midnight or one tick before one.
    /// </summary>
    internal static readonly Gen<DateTimeOffset> Instant =
        Gen.Select(Gen.Int[1995, 2105], Gen.Int[1, 12], Gen.Int[0, 40], Gen.Int[0, 3], Gen.Long[0, TimeSpan.TicksPerDay - 1],
            (year, month, dayPick, timeKind, ticks) =>
            {
                var days = DateTime.DaysInMonth(year, month);
                // 0-3: the month's first days; 4-7: its last days; otherwise anywhere.
                var day = dayPick < 4 ? dayPick + 1 : dayPick < 8 ? days - (dayPick - 4) : 1 + (dayPick % days);
                var time = timeKind switch
                {
                    0 => 0,
                    1 => TimeSpan.TicksPerDay - 1,
                    _ => ticks,
                };
                return new DateTimeOffset(new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Utc).AddTicks(time));
            });

    private static int ExpectedStartDay(DateTimeOffset start, int anchor) => Math.Min(anchor, DateTime.DaysInMonth(start.Year, start.Month));

    [Fact]
    public void Containing_RandomAnchorsAndInstants_StartAtOrBeforeInstantEndAfterIt()
    {
        Gen.Select(Anchor, Instant).Sample((anchor, at) =>
        {
            var period = BillingPeriod.Containing(anchor, at);
            return period.Start <= at && at < period.End;
        }, iter: 20_000);
    }

    [Fact]
    public void Containing_RandomAnchorsAndInstants_StartsAtMidnightUtcOnAnchorOrMonthsLastDay()
    {
        Gen.Select(Anchor, Instant).Sample((anchor, at) =>
        {
            var period = BillingPeriod.Containing(anchor, at);
            foreach (var edge in new[] { period.Start, period.End })
            {
                Assert.Equal(TimeSpan.Zero, edge.Offset);
                Assert.Equal(TimeSpan.Zero, edge.TimeOfDay);
                Assert.Equal(ExpectedStartDay(edge, anchor), edge.Day);
            }
            // One calendar month apart: the end is in the month after the start's.
            Assert.Equal(period.Start.Year * 12 + period.Start.Month + 1, period.End.Year * 12 + period.End.Month);
        }, iter: 20_000);
    }

    [Fact]
    public void Containing_RandomAnchorsAndInstants_EndIsNextPeriodsStartAndPeriodsTile()
    {
        Gen.Select(Anchor, Instant).Sample((anchor, at) =>
        {
            var period = BillingPeriod.Containing(anchor, at);
            var next = BillingPeriod.Containing(anchor, period.End);
            Assert.Equal(period.End, next.Start);
            // The edges themselves: the start belongs to its period, the tick before it to the previous one, whose end it is.
            Assert.Equal(period, BillingPeriod.Containing(anchor, period.Start));
            Assert.Equal(period, BillingPeriod.Containing(anchor, period.End.AddTicks(-1)));
            Assert.Equal(period.Start, BillingPeriod.Containing(anchor, period.Start.AddTicks(-1)).End);
        }, iter: 20_000);
    }

    [Fact]
    public void Containing_InstantWithOffset_SameAsItsUtcInstant()
    {
        Gen.Select(Anchor, Instant, Gen.Int[-14 * 4, 14 * 4]).Sample((anchor, at, quarters) =>
        {
            var shifted = at.ToOffset(TimeSpan.FromMinutes(quarters * 15));
            Assert.Equal(BillingPeriod.Containing(anchor, at), BillingPeriod.Containing(anchor, shifted));
        }, iter: 5_000);
    }

    [Theory]
    // Anchored on the 31st: 29 February in a leap year (2028), 28 February otherwise (2027), 30 April.
    [InlineData(31, "2028-02-15T12:00:00Z", "2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z")]
    [InlineData(31, "2028-02-28T23:59:59.9999999Z", "2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z")]
    [InlineData(31, "2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z")]
    [InlineData(31, "2027-02-15T12:00:00Z", "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z")]
    [InlineData(31, "2027-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z")]
    [InlineData(31, "2027-03-30T23:59:59Z", "2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z")]
    [InlineData(31, "2027-04-29T23:59:59.9999999Z", "2027-03-31T00:00:00Z", "2027-04-30T00:00:00Z")]
    [InlineData(31, "2027-04-30T00:00:00Z", "2027-04-30T00:00:00Z", "2027-05-31T00:00:00Z")]
    // Anchored on the 29th and 30th: February's last day, then back to the anchor in March.
    [InlineData(30, "2027-03-01T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-30T00:00:00Z")]
    [InlineData(29, "2027-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-29T00:00:00Z")]
    [InlineData(29, "2028-02-28T23:00:00Z", "2028-01-29T00:00:00Z", "2028-02-29T00:00:00Z")]
    // December to January: the year changes with the period.
    [InlineData(15, "2027-01-03T08:00:00Z", "2026-12-15T00:00:00Z", "2027-01-15T00:00:00Z")]
    [InlineData(31, "2026-12-31T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z")]
    [InlineData(31, "2026-12-30T23:59:59Z", "2026-11-30T00:00:00Z", "2026-12-31T00:00:00Z")]
    [InlineData(1, "2026-12-31T23:59:59.9999999Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")]
    [InlineData(1, "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z")]
    // Exactly at the boundary instant: the period that starts there, not the one that ends there.
    [InlineData(10, "2027-06-10T00:00:00Z", "2027-06-10T00:00:00Z", "2027-07-10T00:00:00Z")]
    [InlineData(10, "2027-06-09T23:59:59.9999999Z", "2027-05-10T00:00:00Z", "2027-06-10T00:00:00Z")]
    // 2100 is not a leap year.
    [InlineData(31, "2100-02-28T00:00:00Z", "2100-02-28T00:00:00Z", "2100-03-31T00:00:00Z")]
    public void Containing_NamedCases(int anchor, string at, string start, string end)
    {
        Assert.Equal(new BillingPeriod(Utc(start), Utc(end)), BillingPeriod.Containing(anchor, Utc(at)));
    }

    [Fact]
    public void Containing_AnchoredOn31st_AYearOfPeriodsFollowsTheMonthsLastDays()
    {
        var starts = new List<string>();
        var at = Utc("2027-12-31T00:00:00Z");
        for (var i = 0; i < 14; i++)
        {
            var period = BillingPeriod.Containing(31, at);
            starts.Add(period.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            at = period.End;
        }
        Assert.Equal(["2027-12-31", "2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30", "2028-05-31", "2028-06-30", "2028-07-31",
            "2028-08-31", "2028-09-30", "2028-10-31", "2028-11-30", "2028-12-31", "2029-01-31"], starts);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(32)]
    [InlineData(-1)]
    public void Containing_AnchorOutside1To31_Throws(int anchor)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => BillingPeriod.Containing(anchor, Utc("2027-01-01T00:00:00Z")));
    }

    [Theory]
    [InlineData("2027-01-31T10:00:00Z", 31)]
    [InlineData("2027-01-31T23:30:00-05:00", 1)] // 1 February 04:30 UTC
    [InlineData("2027-03-01T01:00:00+02:00", 28)] // 28 February 23:00 UTC
    public void AnchorDayOf_IsTheUtcDayOfMonth(string firstSubscribedAt, int expected)
    {
        Assert.Equal(expected, BillingPeriod.AnchorDayOf(DateTimeOffset.Parse(firstSubscribedAt, CultureInfo.InvariantCulture)));
    }

    [Theory]
    [InlineData(0L, null, false)]
    [InlineData(long.MaxValue, null, false)]
    [InlineData(99L, 100L, false)]
    [InlineData(100L, 100L, true)]
    [InlineData(101L, 100L, true)]
    public void DataUsage_ExhaustedAtOrOverTheLimitOnly(long used, long? limit, bool exhausted)
    {
        var period = BillingPeriod.Containing(1, Utc("2027-01-15T00:00:00Z"));
        Assert.Equal(exhausted, new DataUsage(used, limit, period).Exhausted);
    }
}
