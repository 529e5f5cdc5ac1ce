using NpgsqlTypes;
using Vpn.Domain.Usage;
using Vpn.Entry.Tests.Data;

namespace Vpn.Entry.Tests.Usage;

/// <summary>
/// The database's billing_period_start/billing_period_end (migration 0008) and <see cref="BillingPeriod.Containing"/> are
/// one rule: for every anchor, every midnight of 2027-2029 (a leap year between two others) and the microsecond before it,
/// plus random instants over two centuries, both answer the same period. One query per batch (arrays in, unnest).
/// </summary>
public sealed class BillingPeriodSqlTests
{
    private const string Sql = """
        select x.i, p.s, billing_period_end(x.a, p.s)
        from unnest(@anchors, @instants) with ordinality as x(a, t, i)
        cross join lateral (select billing_period_start(x.a, x.t) as s) p
        order by x.i
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>PostgreSQL keeps microseconds: instants are whole microseconds, so both sides see the same one.</summary>
    private static DateTimeOffset Micro(DateTimeOffset at) => at.AddTicks(-(at.Ticks % TimeSpan.TicksPerMicrosecond));

    /// <param name="sessionTimeZone">The connection's TimeZone: the functions must not depend on it.</param>
    private static async Task AssertAgreeAsync(TestDatabase db, List<(int Anchor, DateTimeOffset At)> pairs, string sessionTimeZone)
    {
        await using var connection = await db.DataSource.OpenConnectionAsync(Ct);
        await using (var zone = new NpgsqlCommand($"set time zone '{sessionTimeZone}'", connection))
        {
            await zone.ExecuteNonQueryAsync(Ct);
        }
        await using var command = new NpgsqlCommand(Sql, connection);
        command.Parameters.Add(new NpgsqlParameter("anchors", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = pairs.Select(p => p.Anchor).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("instants", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = pairs.Select(p => p.At).ToArray() });
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = 0;
        var mismatches = new List<string>();
        while (await reader.ReadAsync(Ct))
        {
            var (anchor, at) = pairs[(int)reader.GetInt64(0) - 1];
            var sql = new BillingPeriod(reader.GetFieldValue<DateTimeOffset>(1), reader.GetFieldValue<DateTimeOffset>(2));
            var cs = BillingPeriod.Containing(anchor, at);
            if (sql != cs && mismatches.Count < 20)
            {
                mismatches.Add($"anchor {anchor} at {at:O}: SQL {sql.Start:O}..{sql.End:O}, C# {cs.Start:O}..{cs.End:O}");
            }
            rows++;
        }
        Assert.Equal(pairs.Count, rows);
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }

    [Fact]
    public async Task BillingPeriod_EveryAnchorAtEveryMidnightOf2027To2029_SqlAndCSharpAgree()
    {
        await using var db = await TestDatabase.CreateMigratedAsync("billing_sql");
        var pairs = new List<(int, DateTimeOffset)>();
        for (var day = new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero); day.Year < 2030; day = day.AddDays(1))
        {
            for (var anchor = 1; anchor <= 31; anchor++)
            {
                pairs.Add((anchor, day));
                pairs.Add((anchor, day.AddTicks(-TimeSpan.TicksPerMicrosecond)));
                pairs.Add((anchor, day.AddHours(13.5)));
            }
        }
        Assert.Contains(pairs, p => p.Item2 == new DateTimeOffset(2028, 2, 29, 0, 0, 0, TimeSpan.Zero));
        await AssertAgreeAsync(db, pairs, "UTC");
        await AssertAgreeAsync(db, pairs, "Pacific/Chatham");
    }

    [Fact]
    public async Task BillingPeriod_RandomAnchorsAndInstants_SqlAndCSharpAgree()
    {
        const int Seed = 150_001;
        var random = new Random(Seed);
        var pairs = new List<(int, DateTimeOffset)>();
        for (var i = 0; i < 20_000; i++)
        {
            var anchor = random.Next(4) == 0 ? random.Next(28, 32) : random.Next(1, 32);
            var year = random.Next(1970, 2170);
            var month = random.Next(1, 13);
            var days = DateTime.DaysInMonth(year, month);
            // Half of them on a month's first or last two days, where the anchor moves.
            var day = random.Next(2) == 0 ? new[] { 1, 2, days - 1, days }[random.Next(4)] : random.Next(1, days + 1);
            var time = random.Next(3) switch
            {
                0 => 0,
                1 => TimeSpan.TicksPerDay - TimeSpan.TicksPerMicrosecond,
                _ => random.NextInt64(TimeSpan.TicksPerDay),
            };
            pairs.Add((anchor, Micro(new DateTimeOffset(year, month, day, 0, 0, 0, TimeSpan.Zero).AddTicks(time))));
        }
        await using var db = await TestDatabase.CreateMigratedAsync("billing_sql");
        await AssertAgreeAsync(db, pairs, "America/St_Johns");
    }

    [Theory]
    [InlineData("2030-01-31T23:30:00Z", "2030-02-01T00:30:00Z", 31)] // the later one does not move the anchor
    [InlineData("2030-02-28T23:59:59Z", null, 28)]
    [InlineData("2030-03-01T00:00:00Z", null, 1)]
    public async Task BillingAnchorDay_TheUtcDayOfTheFirstSubscription_WhateverTheSessionTimeZone(string first, string? later, int expected)
    {
        await using var db = await TestDatabase.CreateMigratedAsync("billing_sql");
        await using var connection = await db.DataSource.OpenConnectionAsync(Ct);
        var customer = Guid.NewGuid();
        var starts = new[] { first, later }.OfType<string>()
            .Select(t => DateTimeOffset.Parse(t, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        await using (var insert = new NpgsqlCommand("""
            insert into plans (code, name, max_devices, allowed_regions) values ('p', 'P', 1, '{eu-west}');
            insert into customers (id) values (@c);
            insert into customer_subscriptions (customer_id, plan_code, status, started_at, ended_at)
            select @c, 'p', 'active', s, lead(s) over (order by s) from unnest(@starts) s;
            """, connection))
        {
            insert.Parameters.AddWithValue("c", customer);
            insert.Parameters.Add(new NpgsqlParameter("starts", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = starts });
            await insert.ExecuteNonQueryAsync(Ct);
        }
        foreach (var zone in new[] { "UTC", "Asia/Tokyo", "America/Los_Angeles" })
        {
            await using var command = new NpgsqlCommand($"set time zone '{zone}'; select billing_anchor_day(@c)", connection);
            command.Parameters.AddWithValue("c", customer);
            Assert.Equal(expected, (int)(await command.ExecuteScalarAsync(Ct))!);
        }
        await using var none = new NpgsqlCommand("select billing_anchor_day(@c)", connection);
        none.Parameters.AddWithValue("c", Guid.NewGuid());
        Assert.Equal(1, (int)(await none.ExecuteScalarAsync(Ct))!);
    }
}
