using System.Reflection;
using Vpn.Entry.Audit;
using Vpn.Entry.Data.Postgres;

namespace Vpn.Entry.Tests.Privacy;

/// <summary>
/// Retention cleanup against a running entry: history is made through the API with the real clock, then a pass runs as
/// if later (a <see cref="RetentionCleanupService"/> on the host's services with a <see cref="FakeTimeProvider"/>).
/// Cut-offs fall between two API calls, so every assertion says which side of the window a row was on.
/// </summary>
public abstract class RetentionTests(StoreKind store)
{
    protected StoreKind Store { get; } = store;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>entry without the background pass, so only the test's passes run.</summary>
    protected Task<TestStack> StartAsync(Dictionary<string, string?>? settings = null) =>
        TestStack.StartAsync(Store, settings, BackgroundCleanup.Remove);

    /// <summary>One cleanup pass as if the clock read <paramref name="at"/>.</summary>
    protected static Task<PurgeCounts?> PurgeAtAsync(TestStack stack, DateTimeOffset at) =>
        ActivatorUtilities.CreateInstance<RetentionCleanupService>(stack.EntryServices, (TimeProvider)new FakeTimeProvider(at)).RunOnceAsync(Ct);

    /// <summary>
    /// A moment strictly after everything before it and strictly before everything after it; whole microseconds, as
    /// PostgreSQL stores them, so times derived from it compare equal after a round trip.
    /// </summary>
    protected static async Task<DateTimeOffset> MarkAsync()
    {
        await Task.Delay(20, Ct);
        var now = DateTimeOffset.UtcNow;
        var mark = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMicrosecond));
        await Task.Delay(20, Ct);
        return mark;
    }

    /// <summary>Every stored session id, where the store can be read directly (PostgreSQL); null otherwise.</summary>
    protected virtual Task<HashSet<Guid>?> StoredSessionIdsAsync(TestStack stack) => Task.FromResult<HashSet<Guid>?>(null);

    private static HttpRequestMessage StartRequest(Customer c, bool replace = false, string? idempotencyKey = null)
    {
        var request = TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west", replace_existing = replace });
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return request;
    }

    private static async Task<(Guid Id, string Key)> StartSessionAsync(TestStack stack, Customer c, bool replace = false)
    {
        var session = await stack.SendJsonAsync(StartRequest(c, replace), 201);
        return (session.GetProperty("session_id").GetGuid(), session.GetProperty("session_key").GetString()!);
    }

    /// <summary>The session is the customer's current one and reconnects; returns its new session key.</summary>
    private static async Task<string> AssertLiveAsync(TestStack stack, Customer c, Guid sessionId, string key)
    {
        var current = await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(sessionId, current.GetProperty("session_id").GetGuid());
        var reconnected = await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = key }), 200);
        Assert.Equal(sessionId, reconnected.GetProperty("session_id").GetGuid());
        return reconnected.GetProperty("session_key").GetString()!;
    }

    private static async Task<List<AuditEvent>> PurgeEventsAsync(TestStack stack) =>
        [.. (await stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(1000, Ct)).Where(e => e.Action == "privacy.retention_purge").Reverse()];

    [Fact]
    public async Task Purge_EndedSessionsPastWindow_Deleted_LiveAndRecentlyEndedKept()
    {
        await using var stack = await StartAsync(new() { ["APP_SESSION_RETENTION_DAYS"] = "1" });
        // Live since before anything ended: age alone never deletes a live session.
        var longLived = await stack.SeedCustomerAsync();
        var (longLivedId, longLivedKey) = await StartSessionAsync(stack, longLived);
        // Ended by the customer.
        var a = await stack.SeedCustomerAsync();
        var (endedByCustomer, _) = await StartSessionAsync(stack, a);
        await stack.SendJsonAsync(TestStack.AsCustomer(a.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
        // Ended by deleting its device.
        var b = await stack.SeedCustomerAsync();
        var (endedByDevice, _) = await StartSessionAsync(stack, b);
        await stack.SendJsonAsync(TestStack.AsCustomer(b.Id, HttpMethod.Delete, $"/v1/devices/{b.DeviceId}"), 204);
        // Started before the cut-off, ended after it: the window runs from the end, not the start.
        var d = await stack.SeedCustomerAsync();
        var (endedLateByCustomer, _) = await StartSessionAsync(stack, d);
        var e = await stack.SeedCustomerAsync();
        var (endedLateByDevice, _) = await StartSessionAsync(stack, e);
        var c = await stack.SeedCustomerAsync();
        var (replaced, _) = await StartSessionAsync(stack, c);
        var cutoff = await MarkAsync();
        await stack.SendJsonAsync(TestStack.AsCustomer(d.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
        await stack.SendJsonAsync(TestStack.AsCustomer(e.Id, HttpMethod.Delete, $"/v1/devices/{e.DeviceId}"), 204);
        // Ended by replacement after the cut-off; its successor is live.
        var (successorId, successorKey) = await StartSessionAsync(stack, c, replace: true);

        var first = await PurgeAtAsync(stack, cutoff + TimeSpan.FromDays(1));

        Assert.Equal(new PurgeCounts(2, 0, 0), first);
        if (await StoredSessionIdsAsync(stack) is { } stored)
        {
            Assert.Equal(new[] { longLivedId, endedLateByCustomer, endedLateByDevice, replaced, successorId }.Order(), stored.Order());
            Assert.DoesNotContain(endedByCustomer, stored);
            Assert.DoesNotContain(endedByDevice, stored);
        }
        longLivedKey = await AssertLiveAsync(stack, longLived, longLivedId, longLivedKey);
        successorKey = await AssertLiveAsync(stack, c, successorId, successorKey);
        var purgeEvent = Assert.Single(await PurgeEventsAsync(stack));
        Assert.Equal("system", purgeEvent.Actor);
        Assert.Null(purgeEvent.Subject);
        Assert.Equal(cutoff + TimeSpan.FromDays(1), purgeEvent.OccurredAt);
        Assert.Equal("2", purgeEvent.Details["sessions"]);
        Assert.Equal("0", purgeEvent.Details["audit_events"]);
        Assert.Equal("0", purgeEvent.Details["idempotency_records"]);
        var status = stack.EntryServices.GetRequiredService<RetentionStatus>().Snapshot();
        Assert.Equal(cutoff + TimeSpan.FromDays(1), status.LastSuccessAt);
        Assert.Equal(first, status.LastPurged);

        // Much later: the windows of the sessions that ended after the cut-off have passed too; the live ones are still untouchable.
        var second = await PurgeAtAsync(stack, cutoff + TimeSpan.FromDays(30));
        var third = await PurgeAtAsync(stack, cutoff + TimeSpan.FromDays(60));

        Assert.Equal(new PurgeCounts(3, 0, 0), second);
        Assert.Equal(new PurgeCounts(0, 0, 0), third);
        if (await StoredSessionIdsAsync(stack) is { } left)
        {
            Assert.Equal(new[] { longLivedId, successorId }.Order(), left.Order());
        }
        await AssertLiveAsync(stack, longLived, longLivedId, longLivedKey);
        await AssertLiveAsync(stack, c, successorId, successorKey);
        // A pass that deleted nothing writes no audit event.
        Assert.Equal(["2", "3"], (await PurgeEventsAsync(stack)).Select(e => e.Details["sessions"]));
        Assert.Equal(new PurgeCounts(0, 0, 0), stack.EntryServices.GetRequiredService<RetentionStatus>().Snapshot().LastPurged);
    }

    [Fact]
    public async Task Purge_ExpiredIdempotencyRecords_ReplayStartsFresh_UnexpiredStillReplays()
    {
        await using var stack = await StartAsync();
        var c = await stack.SeedCustomerAsync();
        var first = await stack.SendJsonAsync(StartRequest(c, replace: true, idempotencyKey: "key-old"), 201);
        var replayed = await stack.SendJsonAsync(StartRequest(c, replace: true, idempotencyKey: "key-old"), 201);
        Assert.Equal(first.GetProperty("session_id").GetGuid(), replayed.GetProperty("session_id").GetGuid());
        var between = await MarkAsync();
        var second = await stack.SendJsonAsync(StartRequest(c, replace: true, idempotencyKey: "key-new"), 201);

        // key-old was recorded before the mark, key-new after: 24 h after the mark only key-old has expired.
        var purged = await PurgeAtAsync(stack, between + TimeSpan.FromHours(24));

        Assert.Equal(new PurgeCounts(0, 0, 1), purged);
        var stillReplayed = await stack.SendJsonAsync(StartRequest(c, replace: true, idempotencyKey: "key-new"), 201);
        Assert.Equal(second.GetProperty("session_id").GetGuid(), stillReplayed.GetProperty("session_id").GetGuid());
        var fresh = await stack.SendJsonAsync(StartRequest(c, replace: true, idempotencyKey: "key-old"), 201);
        Assert.NotEqual(first.GetProperty("session_id").GetGuid(), fresh.GetProperty("session_id").GetGuid());
        Assert.NotEqual(second.GetProperty("session_id").GetGuid(), fresh.GetProperty("session_id").GetGuid());
        var current = await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(fresh.GetProperty("session_id").GetGuid(), current.GetProperty("session_id").GetGuid());
        Assert.Equal("1", Assert.Single(await PurgeEventsAsync(stack)).Details["idempotency_records"]);

        // Both expired a day later (key-old's fresh record included); nothing is left to replay.
        var later = await PurgeAtAsync(stack, DateTimeOffset.UtcNow + TimeSpan.FromDays(2));
        Assert.Equal(new PurgeCounts(0, 0, 2), later);
    }

    [Fact]
    public async Task Purge_AuditEventsPastWindow_Deleted_RecentKept()
    {
        await using var stack = await StartAsync(new() { ["APP_AUDIT_RETENTION_DAYS"] = "1" });
        var audit = stack.EntryServices.GetRequiredService<IAuditLog>();
        var old = await stack.SeedCustomerAsync(); // plan.upserted, node.created, subscription.set
        var cutoff = await MarkAsync();
        var recent = Guid.NewGuid();
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = recent, plan_code = "basic", status = "active" }), 200);
        var before = await audit.RecentAsync(1000, Ct);
        var expectedGone = before.Count(e => e.OccurredAt < cutoff);
        Assert.True(expectedGone >= 3, $"only {expectedGone} audit events before the cut-off");
        Assert.Contains(before, e => e.Action == "subscription.set" && e.Subject == old.Id.ToString());

        var purged = await PurgeAtAsync(stack, cutoff + TimeSpan.FromDays(1));

        Assert.Equal(new PurgeCounts(0, expectedGone, 0), purged);
        var after = await audit.RecentAsync(1000, Ct);
        Assert.DoesNotContain(after, e => e.OccurredAt < cutoff);
        Assert.DoesNotContain(after, e => e.Subject == old.Id.ToString());
        Assert.Contains(after, e => e.Action == "subscription.set" && e.Subject == recent.ToString());
        var purgeEvent = Assert.Single(after, e => e.Action == "privacy.retention_purge");
        Assert.Equal(expectedGone.ToString(System.Globalization.CultureInfo.InvariantCulture), purgeEvent.Details["audit_events"]);
        Assert.Equal(before.Count - expectedGone + 1, after.Count);
    }
}

public sealed class InMemoryRetentionTests() : RetentionTests(StoreKind.InMemory);

public sealed class PostgresRetentionTests() : RetentionTests(StoreKind.Postgres)
{
    private const int OldTimed = 10_000; // exactly two batches: the loop must stop on the empty third
    private const int OldUntimed = 5_001; // one more than a batch
    private const int RecentEnded = 7;
    private const int OldAudit = 7_500;
    private const int ExpiredIdempotency = 5_003;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Sql(string name) =>
        (string)typeof(PostgresRetentionStore).GetField(name, BindingFlags.NonPublic | BindingFlags.Static)!.GetRawConstantValue()!;

    // History as years of production would leave it: ended sessions with and without terminated_at, live sessions
    // that started long ago, old audit events and expired Idempotency-Key records.
    private const string SeedSql = """
        insert into customers (id) select ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid from generate_series(1, 3) i;
        insert into vpn_nodes (id, name, region, capacity, public_endpoint, public_key, core_endpoint)
            values ('00000000-0000-4000-9000-000000000001', 'bulk-node', 'eu-west', 1000, '203.0.113.9:51820', 'bulk-key', 'core.test:50051');
        insert into sessions (id, customer_id, device_public_key, node_id, state, session_key_hash, region, created_at, terminated_at, updated_at)
            select gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 'k', '00000000-0000-4000-9000-000000000001',
                case when i % 10 = 0 then 'failed' else 'terminated' end, sha256(('timed' || i)::bytea), 'eu-west',
                now() - interval '40 days', now() - interval '30 days' - i * interval '1 second', now() - interval '30 days'
            from generate_series(1, @old_timed) i;
        insert into sessions (id, customer_id, device_public_key, node_id, state, session_key_hash, region, created_at, terminated_at, updated_at)
            select gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 'k', '00000000-0000-4000-9000-000000000001',
                'terminated', sha256(('untimed' || i)::bytea), 'eu-west', now() - interval '40 days', null, now() - interval '20 days'
            from generate_series(1, @old_untimed) i;
        insert into sessions (id, customer_id, device_public_key, node_id, state, session_key_hash, region, created_at, terminated_at, updated_at)
            select gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 'k', '00000000-0000-4000-9000-000000000001',
                'terminated', sha256(('recent' || i)::bytea), 'eu-west', now() - interval '2 days', now() - interval '1 day', now() - interval '1 day'
            from generate_series(1, @recent) i;
        insert into sessions (id, customer_id, device_public_key, node_id, state, assigned_address, session_key_hash, region, created_at, activated_at, updated_at)
            values ('00000000-0000-4000-a000-000000000002', '00000000-0000-4000-8000-000000000002', 'k', '00000000-0000-4000-9000-000000000001',
                'active', '10.64.0.2', sha256('live-active'::bytea), 'eu-west', now() - interval '400 days', now() - interval '400 days', now() - interval '400 days'),
            ('00000000-0000-4000-a000-000000000003', '00000000-0000-4000-8000-000000000003', 'k', '00000000-0000-4000-9000-000000000001',
                'provisioning', null, sha256('live-provisioning'::bytea), 'eu-west', now() - interval '400 days', null, now() - interval '400 days');
        insert into audit_events (occurred_at, actor, action, subject)
            select now() - interval '100 days' - i * interval '1 second', 'admin', 'bulk.old', 'x' from generate_series(1, @old_audit) i;
        insert into idempotency_keys (customer_id, key, request_hash, state, created_at, expires_at)
            select '00000000-0000-4000-8000-000000000001', 'expired-' || i, '\x00', 'completed', now() - interval '2 days', now() - interval '1 day'
            from generate_series(1, @expired_idempotency) i;
        insert into idempotency_keys (customer_id, key, request_hash, state, created_at, expires_at)
            values ('00000000-0000-4000-8000-000000000001', 'unexpired', '\x00', 'completed', now(), now() + interval '1 day');
        """;

    protected override async Task<HashSet<Guid>?> StoredSessionIdsAsync(TestStack stack)
    {
        await using var command = stack.EntryServices.GetRequiredService<NpgsqlDataSource>().CreateCommand("select id from sessions");
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var ids = new HashSet<Guid>();
        while (await reader.ReadAsync(Ct))
        {
            ids.Add(reader.GetGuid(0));
        }
        return ids;
    }

    private static async Task<long> CountAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }

    [Fact]
    public async Task Purge_YearsOfHistory_AllDeletedInOnePass_InBatches()
    {
        await using var stack = await StartAsync();
        var dataSource = stack.EntryServices.GetRequiredService<NpgsqlDataSource>();
        await using (var seed = dataSource.CreateCommand(SeedSql))
        {
            seed.CommandTimeout = 120;
            seed.Parameters.AddWithValue("old_timed", OldTimed);
            seed.Parameters.AddWithValue("old_untimed", OldUntimed);
            seed.Parameters.AddWithValue("recent", RecentEnded);
            seed.Parameters.AddWithValue("old_audit", OldAudit);
            seed.Parameters.AddWithValue("expired_idempotency", ExpiredIdempotency);
            await seed.ExecuteNonQueryAsync(Ct);
        }

        // The host's own service on the real clock: default windows, 7 days for sessions and 90 for audit events.
        var purged = await stack.EntryServices.GetRequiredService<RetentionCleanupService>().RunOnceAsync(Ct);

        Assert.Equal(new PurgeCounts(OldTimed + OldUntimed, OldAudit, ExpiredIdempotency), purged);
        Assert.Equal(RecentEnded, await CountAsync(dataSource, "select count(*) from sessions where state in ('terminated', 'failed')"));
        Assert.Equal(2, await CountAsync(dataSource, "select count(*) from sessions where state in ('active', 'provisioning')"));
        Assert.Equal(0, await CountAsync(dataSource, "select count(*) from audit_events where action = 'bulk.old'"));
        Assert.Equal(1, await CountAsync(dataSource, "select count(*) from audit_events where action = 'privacy.retention_purge'"));
        Assert.Equal(1, await CountAsync(dataSource, "select count(*) from idempotency_keys"));
        var again = await stack.EntryServices.GetRequiredService<RetentionCleanupService>().RunOnceAsync(Ct);
        Assert.Equal(new PurgeCounts(0, 0, 0), again);
    }

    [Fact]
    public async Task PurgeQueries_OnTablesOfRecentRows_UseTheirIndexes()
    {
        await using var stack = await StartAsync();
        var dataSource = stack.EntryServices.GetRequiredService<NpgsqlDataSource>();
        // Plenty of rows none of which is due: the common case of every pass after the first.
        await using (var seed = dataSource.CreateCommand("""
            insert into customers (id) values ('00000000-0000-4000-8000-000000000001');
            insert into vpn_nodes (id, name, region, capacity, public_endpoint, public_key, core_endpoint)
                values ('00000000-0000-4000-9000-000000000001', 'bulk-node', 'eu-west', 1000, '203.0.113.9:51820', 'bulk-key', 'core.test:50051');
            insert into sessions (id, customer_id, device_public_key, node_id, state, session_key_hash, region, created_at, terminated_at, updated_at)
                select gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 'k', '00000000-0000-4000-9000-000000000001',
                    'terminated', sha256(('recent' || i)::bytea), 'eu-west', now() - interval '2 days', now() - i * interval '1 second', now()
                from generate_series(1, 20000) i;
            insert into audit_events (occurred_at, actor, action, subject)
                select now() - i * interval '1 second', 'admin', 'bulk.recent', 'x' from generate_series(1, 20000) i;
            insert into idempotency_keys (customer_id, key, request_hash, state, created_at, expires_at)
                select '00000000-0000-4000-8000-000000000001', 'k-' || i, '\x00', 'completed', now(), now() + interval '1 day'
                from generate_series(1, 20000) i;
            analyze sessions; analyze audit_events; analyze idempotency_keys;
            """))
        {
            seed.CommandTimeout = 120;
            await seed.ExecuteNonQueryAsync(Ct);
        }

        foreach (var (name, index, before) in new[]
        {
            ("SessionsSql", "sessions_terminated_at", DateTimeOffset.UtcNow - TimeSpan.FromDays(7)),
            ("UntimedSessionsSql", "sessions_terminated_at", DateTimeOffset.UtcNow - TimeSpan.FromDays(7)),
            ("AuditSql", "audit_events_occurred", DateTimeOffset.UtcNow - TimeSpan.FromDays(90)),
            ("IdempotencySql", "idempotency_keys_expires", DateTimeOffset.UtcNow),
        })
        {
            await using var explain = dataSource.CreateCommand("explain (costs off) " + Sql(name));
            explain.Parameters.AddWithValue("before", before);
            explain.Parameters.AddWithValue("batch", 5000);
            var plan = new List<string>();
            await using (var reader = await explain.ExecuteReaderAsync(Ct))
            {
                while (await reader.ReadAsync(Ct))
                {
                    plan.Add(reader.GetString(0));
                }
            }
            var text = string.Join('\n', plan);
            Assert.DoesNotContain("Seq Scan", text, StringComparison.Ordinal);
            Assert.Contains(index, text, StringComparison.Ordinal);
        }
    }
}
