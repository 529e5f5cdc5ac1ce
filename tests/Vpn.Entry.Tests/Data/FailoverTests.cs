using System.Collections.Concurrent;
using System.Globalization;
using Vpn.Entry.Auth;
using Vpn.Entry.Http;

namespace Vpn.Entry.Tests.Data;

/// <summary>
/// A PostgreSQL primary dies under a steady stream of session starts and its synchronous standby is promoted: entry,
/// on a multi-host DATABASE_URL, answers only 201 / 409 / 503 with a stable code (never 500), starts again once the
/// standby is primary, has lost no session it answered 201 for, and its revocation follower follows the new primary.
/// Alone (its own collection): the pause it measures is entry's, not that of a suite competing for two cores.
/// </summary>
[Collection(nameof(FailoverCollection))]
public sealed class FailoverTests
{
    private const int Clients = 6;
    private const int CustomersPerClient = 6;
    // The 503s an outage may bring: the store itself, the revocation list gone stale, and load shedding while
    // requests queue up behind it ("server_busy", "node_busy": spelled out, they come with the shedding feature).
    private static readonly string[] s_outageCodes = [ErrorCodes.StoreUnavailable, ErrorCodes.RevocationUnavailable, "server_busy", "node_busy"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("immediate")] // the primary dies (crash, node loss)
    [InlineData("fast")]      // a planned switchover: sessions end with 57P01
    public async Task PrimaryStoppedMidStream_StandbyPromoted_Only503sThenStartsResume_NothingLost(string stopMode)
    {
        await using var pair = await PostgresReplicationPair.StartAsync(synchronous: true);
        var connectionString = await pair.CreateDatabaseAsync("failover");
        var settings = new Dictionary<string, string?> { ["DATABASE_URL"] = PostgresReplicationPair.ToUrl(connectionString) };
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, settings);
        // No ExpectErrors: an outage is expected, so nothing entry logs about it may be an Error (it logs Warnings).
        var first = await stack.SeedCustomerAsync(); // the plan, the node, the first customer
        var customers = new List<(Guid Id, Guid Device, string Token)> { (first.Id, first.DeviceId, stack.TokenFor(first.Id)) };
        while (customers.Count < Clients * CustomersPerClient)
        {
            var id = Guid.NewGuid();
            await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = id, plan_code = "basic", status = "active" }), 200);
            var device = await stack.SendJsonAsync(TestStack.AsCustomer(id, HttpMethod.Post, "/v1/devices", new { name = "phone", public_key = TestStack.NewKey() }), 201);
            customers.Add((id, device.GetProperty("id").GetGuid(), stack.TokenFor(id)));
        }

        var answers = new ConcurrentQueue<Answer>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var (id, device, token) = customers[client * CustomersPerClient + n % CustomersPerClient];
                var started = clock.Elapsed;
                using var response = await stack.Client.SendAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/sessions",
                    new { device_id = device, region = "eu-west", replace_existing = true }), CancellationToken.None);
                var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
                var json = body.Length > 0 && body[0] == '{' ? JsonDocument.Parse(body).RootElement : default;
                answers.Enqueue(new Answer((int)response.StatusCode, Code(json, "code"), Code(json, "session_id"), started, clock.Elapsed, body));
                await Task.Delay(10, CancellationToken.None);
            }
        }, CancellationToken.None)).ToArray();

        await WaitUntilAsync(() => answers.Count(a => a.Status == 201) >= 30, "30 starts before the kill");
        await (stopMode == "fast" ? pair.StopPrimaryAsync() : pair.KillPrimaryAsync());
        // From here on there is no primary (pg_ctl stop returns once the server is down; a fast stop first lets the
        // requests it is serving finish, so a 201 may still land while it runs).
        var killedAt = clock.Elapsed;
        // No primary now: entry must answer (503), not hang. Promote once every client has seen that (and ≥ 1 s).
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);
        await WaitUntilAsync(() => answers.Count(a => a.Status == 503 && a.Started > killedAt) >= Clients, "503s while there is no primary");
        var promoting = clock.Elapsed;
        await pair.PromoteAsync();
        var promotedAt = clock.Elapsed;
        await WaitUntilAsync(() => answers.Count(a => a.Status == 201 && a.Started > promotedAt) >= 3 * Clients, "starts after the promotion");
        await stop.CancelAsync();
        await Task.WhenAll(clients);

        var all = answers.ToList();
        var counts = all.GroupBy(a => a.Status).ToDictionary(g => g.Key, g => g.Count());
        var firstAfterPromotion = all.Where(a => a.Status == 201 && a.Started > promotedAt).Min(a => a.Finished);
        var firstAfterKill = all.Where(a => a.Status == 201 && a.Started > killedAt).Min(a => a.Finished);
        var codes503 = all.Where(a => a.Status == 503).GroupBy(a => a.Code ?? "(none)").Select(g => $"{g.Count()} × {g.Key}");
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"failover ({stopMode}): {all.Count} answers; 201 × {counts.GetValueOrDefault(201)}, 409 × {counts.GetValueOrDefault(409)}, " +
            $"503 × {counts.GetValueOrDefault(503)} ({string.Join(", ", codes503)}), 500 × {counts.GetValueOrDefault(500)}; " +
            $"kill → promoted {(promotedAt - killedAt).TotalSeconds:0.00} s, promoted → first 201 {(firstAfterPromotion - promotedAt).TotalSeconds:0.00} s, " +
            $"kill → first 201 {(firstAfterKill - killedAt).TotalSeconds:0.00} s; pool clears {stack.EntryServices.GetRequiredService<Vpn.Entry.Data.Postgres.PostgresOutageRecovery>().Clears}");

        var unexpected = all.Where(a => a.Status is not (201 or 409) && !(a.Status == 503 && s_outageCodes.Contains(a.Code))).ToList();
        Assert.True(unexpected.Count == 0, $"{unexpected.Count} answers other than 201/409/503 with a stable code, e.g. {unexpected.FirstOrDefault()?.Body}");
        // Nothing can succeed while there is no primary.
        Assert.DoesNotContain(all, a => a.Status == 201 && a.Started > killedAt && a.Finished < promoting);

        // Synchronous replication: every start answered 201 — before the kill or after — is on the new primary.
        var answered = all.Where(a => a.Status == 201).Select(a => Guid.Parse(a.SessionId!)).ToArray();
        var onNewPrimary = On(pair.StandbyAdminConnectionString, connectionString);
        Assert.False(await ScalarAsync<bool>(onNewPrimary, "select pg_is_in_recovery()"));
        var present = await ScalarAsync<long>(onNewPrimary, "select count(*) from sessions where id = any(@ids)", ("ids", answered));
        Assert.Equal(answered.Length, present);
        Assert.True(answered.Length > 30);

        await RevokedOnNewPrimary_IsRejectedAsync(stack, onNewPrimary, customers[0].Id);
    }

    // The follower's LISTEN connection died with the old primary: a revocation another replica writes to the new primary
    // (the row and the NOTIFY, as PostgresTokenRevocations does) must reach this replica's requests.
    private static async Task RevokedOnNewPrimary_IsRejectedAsync(TestStack stack, string onNewPrimary, Guid customer)
    {
        var issued = stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(customer);
        await WaitForStatusAsync(stack, issued.Token, 200, "the token to be accepted after the switch");
        await ExecuteAsync(onNewPrimary, "insert into revoked_tokens (jti, expires_at) values (@jti, @exp); select pg_notify('revoked_tokens', @jti || ' ' || @exp_unix)",
            ("jti", issued.Jti), ("exp", issued.ExpiresAt), ("exp_unix", issued.ExpiresAt.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)));
        var problem = await WaitForStatusAsync(stack, issued.Token, 401, "the revocation written on the new primary to reach the follower");
        Assert.Equal("token_revoked", problem.GetProperty("code").GetString());
    }

    private static async Task<JsonElement> WaitForStatusAsync(TestStack stack, string token, int status, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            using var response = await stack.Client.SendAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), Ct);
            last = await response.Content.ReadAsStringAsync(Ct);
            if ((int)response.StatusCode == status)
            {
                return last.Length == 0 ? default : JsonDocument.Parse(last).RootElement.Clone();
            }
            await Task.Delay(50, Ct);
        }
        throw new Xunit.Sdk.XunitException($"Gave up waiting for {what}; last answer {last}");
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(25);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Gave up waiting for {what}.");
            await Task.Delay(20, Ct);
        }
    }

    private static string? Code(JsonElement json, string property) =>
        json.ValueKind == JsonValueKind.Object && json.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string On(string adminConnectionString, string database) =>
        new NpgsqlConnectionStringBuilder(adminConnectionString) { Database = new NpgsqlConnectionStringBuilder(database).Database }.ConnectionString;

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static async Task ExecuteAsync(string connectionString, string sql, params (string Name, object Value)[] parameters) =>
        await ScalarAsync<object>(connectionString, sql, parameters);

    private sealed record Answer(int Status, string? Code, string? SessionId, TimeSpan Started, TimeSpan Finished, string Body);
}

[CollectionDefinition(nameof(FailoverCollection), DisableParallelization = true)]
public sealed class FailoverCollection;
