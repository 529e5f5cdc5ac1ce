using System.Globalization;

namespace Vpn.Entry.Tests.Subscriptions;

/// <summary>The admin book of customers on PostgreSQL, plus what only a real database can hold: an export of 100,000 subscriptions.</summary>
public sealed class PostgresSubscriptionReportTests() : SubscriptionReportTests(StoreKind.Postgres)
{
    private const int Rows = 100_000;

    // Five plans whose names need every kind of CSV care; customers and periods made in bulk by the database.
    private const string SeedSql = """
        insert into plans (code, name, max_devices, allowed_regions) values
            ('p0', 'Plain', 3, '{eu-west}'),
            ('p1', 'Comma, Inc.', 5, '{eu-west,us-east}'),
            ('p2', 'Say "hi"', 1, '{}'),
            ('p3', E'Two\r\nlines\nand, "all"', 10, '{ap-south}'),
            ('p4', '=cmd|'' /C calc''!A0', 2, '{eu-west}');
        insert into customers (id) select md5('c' || i)::uuid from generate_series(1, @rows) i;
        -- An older, closed period for every tenth customer: the export must show only the open one.
        insert into customer_subscriptions (customer_id, plan_code, status, started_at, ended_at)
            select md5('c' || i)::uuid, 'p' || ((i + 1) % 5), 'expired', timestamptz '2023-01-01 00:00:00+00', timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second'
            from generate_series(10, @rows, 10) i;
        insert into customer_subscriptions (customer_id, plan_code, status, started_at)
            select md5('c' || i)::uuid, 'p' || (i % 5), (array['trialing','active','past_due','canceled','expired'])[1 + (i / 5) % 5],
                timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' + (i % 1000) * interval '1 microsecond'
            from generate_series(1, @rows) i;
        analyze customer_subscriptions;
        """;

    private static readonly (string Name, string MaxDevices, string Regions)[] SeedPlans =
    [
        ("Plain", "3", "eu-west"),
        ("Comma, Inc.", "5", "eu-west;us-east"),
        ("Say \"hi\"", "1", ""),
        ("Two\r\nlines\nand, \"all\"", "10", "ap-south"),
        ("'=cmd|' /C calc'!A0", "2", "eu-west"), // formula-guarded
    ];

    [Fact]
    public async Task Export_100kSubscriptions_EveryRowPresentAndCorrectlyQuoted()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.Postgres);
        var dataSource = stack.EntryServices.GetRequiredService<NpgsqlDataSource>();
        await using (var seed = dataSource.CreateCommand(SeedSql))
        {
            seed.CommandTimeout = 300;
            seed.Parameters.AddWithValue("rows", Rows);
            await seed.ExecuteNonQueryAsync();
        }
        var expected = new Dictionary<Guid, int>(Rows);
        for (var i = 1; i <= Rows; i++)
        {
            // md5 only mirrors the seed's md5(...)::uuid ids; nothing here is a security use.
#pragma warning disable CA5351
            expected[Guid.ParseExact(Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes("c" + i.ToString(CultureInfo.InvariantCulture)))), "N")] = i;
#pragma warning restore CA5351
        }

        var count = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions/count"), 200);
        Assert.Equal(Rows, count.GetProperty("count").GetInt64());
        var text = await GetExportAsync(stack, "/v1/admin/subscriptions/export");
        var rows = StrictCsv.Parse(text);

        Assert.Equal(SubscriptionCsv.Header.Split(','), rows[0]);
        Assert.Equal(Rows + 1, rows.Count);
        var seen = new HashSet<Guid>();
        var ids = new List<Guid>(Rows);
        foreach (var row in rows.Skip(1))
        {
            Assert.Equal(8, row.Length);
            var id = Guid.Parse(row[0]);
            Assert.True(seen.Add(id), $"{id} exported twice");
            ids.Add(id);
            var i = expected[id];
            var plan = SeedPlans[i % 5];
            var started = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).AddSeconds(i).AddTicks(i % 1000 * 10);
            string[] want = [row[0], "p" + (i % 5), plan.Name, Statuses[i / 5 % 5], plan.MaxDevices, plan.Regions, SubscriptionCsv.FormatTime(started), ""];
            if (!want.SequenceEqual(row))
            {
                Assert.Fail($"row of customer {i}: expected [{string.Join('|', want)}], got [{string.Join('|', row)}]");
            }
        }
        Assert.Equal(Rows, seen.Count);
        Assert.True(IsAscending(ids), "export is not in customer_id order");
        Assert.Contains("\"Two\r\nlines\nand, \"\"all\"\"\"", text, StringComparison.Ordinal);

        // Filters on the same data: an indexed page, and the count agrees with a walk of a narrow filter.
        var narrow = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions/count?status=past_due&plan_code=p3"), 200);
        var expectedNarrow = expected.Values.Count(i => i % 5 == 3 && i / 5 % 5 == 2);
        Assert.Equal(expectedNarrow, narrow.GetProperty("count").GetInt64());
        var walked = 0;
        string? cursor = null;
        do
        {
            var page = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions?status=past_due&plan_code=p3&limit=500" + (cursor is null ? "" : "&cursor=" + cursor)), 200);
            walked += page.GetProperty("items").GetArrayLength();
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);
        Assert.Equal(expectedNarrow, walked);
    }
}
