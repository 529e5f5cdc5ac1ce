using Vpn.Entry.Auth;

namespace Vpn.Entry.Tests.Auth;

public abstract class RevocationTests(StoreKind store)
{
    [Fact]
    public async Task Logout_RevokesThatTokenOnly()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = Guid.NewGuid();
        var token = stack.TokenFor(customer);
        var other = stack.TokenFor(customer);
        await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 200);

        await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/auth/logout"), 204);

        var problem = await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 401);
        Assert.Equal("token_revoked", problem.GetProperty("code").GetString());
        var again = await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/auth/logout"), 401);
        Assert.Equal("token_revoked", again.GetProperty("code").GetString());
        // The customer's other token (another device) is untouched.
        await stack.SendJsonAsync(TestStack.WithBearer(other, HttpMethod.Get, "/v1/me"), 200);
    }

    [Fact]
    public async Task Logout_WithLegacyHeaderOrNothing_Refused()
    {
        await using var stack = await TestStack.StartAsync(store);
        var none = await stack.SendJsonAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/auth/logout"), 401);
        Assert.Equal("missing_token", none.GetProperty("code").GetString());
        var legacy = await stack.SendJsonAsync(TestStack.AsCustomer(Guid.NewGuid(), HttpMethod.Post, "/v1/auth/logout"), 401);
        Assert.Equal("missing_token", legacy.GetProperty("code").GetString());
    }
}

public sealed class InMemoryRevocationTests() : RevocationTests(StoreKind.InMemory);

/// <summary>
/// Alone, after the parallel classes: these assert the 1 s fail-closed bound of real replicas, and on a shared 2-core box
/// the rest of the suite running beside them can starve a 250 ms poll past it (seen once in a clean-clone CI run).
/// </summary>
[Collection(nameof(RevocationTimingCollection))]
public sealed class PostgresRevocationTests() : RevocationTests(StoreKind.Postgres)
{
    [Fact]
    public async Task RevokedOnOneReplica_RejectedByAnotherWithinOneSecond()
    {
        var server = await PostgresServer.SharedAsync();
        var url = await server.CreateDatabaseAsync("revoke");
        var settings = new Dictionary<string, string?> { ["DATABASE_URL"] = url };
        await using var first = await TestStack.StartAsync(StoreKind.InMemory, settings);
        await using var second = await TestStack.StartAsync(StoreKind.InMemory, settings);
        var customer = Guid.NewGuid();
        var token = first.TokenFor(customer);
        // Both replicas accept it (the second has loaded its revocation list).
        await first.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 200);
        await second.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 200);

        await first.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/auth/logout"), 204);
        var revokedAt = Stopwatch.StartNew();
        // The contract's bound: one second after the logout answered, every replica refuses the token.
        await Task.Delay(TimeSpan.FromSeconds(1) - revokedAt.Elapsed is { Ticks: > 0 } rest ? rest : TimeSpan.Zero, TestContext.Current.CancellationToken);
        var problem = await second.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 401);
        Assert.Equal("token_revoked", problem.GetProperty("code").GetString());

        // A replica started afterwards loads it from the table.
        await using var third = await TestStack.StartAsync(StoreKind.InMemory, settings);
        var late = await third.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 401);
        Assert.Equal("token_revoked", late.GetProperty("code").GetString());
    }

    [Fact]
    public async Task RepeatedLogouts_EachRefusedBySecondReplica_PropagationReported()
    {
        var server = await PostgresServer.SharedAsync();
        var settings = new Dictionary<string, string?> { ["DATABASE_URL"] = await server.CreateDatabaseAsync("revoke") };
        await using var first = await TestStack.StartAsync(StoreKind.InMemory, settings);
        await using var second = await TestStack.StartAsync(StoreKind.InMemory, settings);
        var samples = new List<TimeSpan>();
        for (var i = 0; i < 5; i++)
        {
            var token = first.TokenFor(Guid.NewGuid());
            await second.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 200);
            await first.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/auth/logout"), 204);
            var clock = Stopwatch.StartNew();
            while (true)
            {
                using var response = await second.Client.SendAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), TestContext.Current.CancellationToken);
                if ((int)response.StatusCode == 401)
                {
                    break;
                }
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the second replica never learned of the revocation");
                await Task.Delay(5, TestContext.Current.CancellationToken);
            }
            samples.Add(clock.Elapsed);
        }
        // Reported, not asserted (timing on a shared box): NOTIFY makes this milliseconds, the poll bounds it at 400 ms.
        TestContext.Current.SendDiagnosticMessage($"revocation propagation: {string.Join(", ", samples.Select(s => $"{s.TotalMilliseconds:F0} ms"))}");
    }

    [Fact]
    public async Task ExpiredRevocations_DeletedFromTheTable_LiveOnesKept()
    {
        var server = await PostgresServer.SharedAsync();
        var url = await server.CreateDatabaseAsync("purge");
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["DATABASE_URL"] = url });
        var token = stack.TokenFor(Guid.NewGuid());
        await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/auth/logout"), 204);
        await using var connection = new Npgsql.NpgsqlConnection(Vpn.Entry.Data.DatabaseUrl.ToConnectionString(url));
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using (var insert = new Npgsql.NpgsqlCommand("insert into revoked_tokens (jti, expires_at) values ('long-expired', now() - interval '1 hour')", connection))
        {
            await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }
        // A fresh replica purges on its first pass (then every 10 minutes).
        await using var second = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["DATABASE_URL"] = url });
        await second.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 401);
        var clock = Stopwatch.StartNew();
        long expired;
        do
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
            await using var count = new Npgsql.NpgsqlCommand("select count(*) filter (where jti = 'long-expired'), count(*) from revoked_tokens", connection);
            await using var reader = await count.ExecuteReaderAsync(TestContext.Current.CancellationToken);
            await reader.ReadAsync(TestContext.Current.CancellationToken);
            expired = reader.GetInt64(0);
            Assert.Equal(expired + 1, reader.GetInt64(1));
        }
        while (expired > 0 && clock.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Equal(0, expired);
    }

    [Fact]
    public async Task IdleReplica_KeepsItsListFresh()
    {
        var server = await PostgresServer.SharedAsync();
        var settings = new Dictionary<string, string?> { ["DATABASE_URL"] = await server.CreateDatabaseAsync("idle") };
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, settings);
        var token = stack.TokenFor(Guid.NewGuid());
        await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 200);
        // No logouts, no notifications: only the follower's own polling keeps the list within its staleness bound.
        for (var i = 0; i < 4; i++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1.5), TestContext.Current.CancellationToken);
            await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 200);
        }
    }

    [Fact]
    public async Task PostgresDown_AuthenticatedRequestsFailClosed_ThenRecover()
    {
        await using var server = await PostgresServer.StartNewAsync();
        var settings = new Dictionary<string, string?> { ["DATABASE_URL"] = await server.CreateDatabaseAsync("closed") };
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, settings);
        var token = stack.TokenFor(Guid.NewGuid());
        await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), 200);

        await server.StopAsync();
        // Within the staleness bound (3 s) requests fail on the store itself; after it, on the revocation check — never 2xx.
        var code = await PollAsync(stack, token, c => c == "revocation_unavailable", TimeSpan.FromSeconds(20));
        Assert.Equal("revocation_unavailable", code);
        using (var response = await stack.Client.SendAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/devices"), TestContext.Current.CancellationToken))
        {
            Assert.Equal(503, (int)response.StatusCode);
        }

        await server.StartAsync();
        Assert.Equal("ok", await PollAsync(stack, token, c => c == "ok", TimeSpan.FromSeconds(30)));
    }

    private static async Task<string> PollAsync(TestStack stack, string token, Func<string, bool> done, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        var last = "";
        while (clock.Elapsed < limit)
        {
            using var response = await stack.Client.SendAsync(TestStack.WithBearer(token, HttpMethod.Get, "/v1/me"), TestContext.Current.CancellationToken);
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            if (response.IsSuccessStatusCode)
            {
                last = "ok";
            }
            else
            {
                Assert.True((int)response.StatusCode == 503, $"while PostgreSQL is down: {(int)response.StatusCode} {body}");
                last = System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("code").GetString()!;
            }
            if (done(last))
            {
                return last;
            }
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        return last;
    }
}

public sealed class RevokedTokenCacheTests
{
    [Fact]
    public void Entries_PrunedOnlyAfterExpiryPlusMargin()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var cache = new RevokedTokenCache(time);
        cache.Add("short", time.GetUtcNow().AddMinutes(1));
        cache.Add("long", time.GetUtcNow().AddHours(1));
        time.Advance(TimeSpan.FromMinutes(2));
        cache.PruneIfDue();
        Assert.True(cache.Contains("short"), "pruned inside the skew margin");
        time.Advance(TimeSpan.FromMinutes(2));
        cache.PruneIfDue();
        Assert.False(cache.Contains("short"));
        Assert.True(cache.Contains("long"));
        Assert.Equal(1, cache.Count);
    }
}

[CollectionDefinition(nameof(RevocationTimingCollection), DisableParallelization = true)]
public sealed class RevocationTimingCollection;
