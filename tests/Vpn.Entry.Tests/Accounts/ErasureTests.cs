using System.Net.Http.Json;
using Vpn.Entry.Audit;
using Vpn.Entry.Auth;
using Vpn.Entry.Data.Postgres;
using Vpn.Entry.Tests.Auth;

namespace Vpn.Entry.Tests.Accounts;

/// <summary>A customer with a sign-in identity, a subscription, a device, an active session (peer on the core) and two tokens.</summary>
public sealed record SeededAccount(Guid CustomerId, Guid DeviceId, Guid SessionId, string Token1, string Token2, string Subject);

/// <summary>DELETE /v1/me, DELETE /v1/admin/customers/{customer_id} and POST /v1/auth/logout-all, on both stores.</summary>
public abstract class ErasureTests(StoreKind store)
{
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected const string Issuer = "https://accounts.test";

    protected static async Task<SeededAccount> SeedAsync(TestStack stack)
    {
        var subject = "subject-" + Guid.NewGuid();
        var customer = (await stack.EntryServices.GetRequiredService<IIdentityStore>().FindOrCreateAsync(Issuer, subject, Ct)).CustomerId;
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/plans", new { code = "basic", name = "Basic", max_devices = 5, allowed_regions = new[] { "eu-west" } }), 200);
        await stack.RegisterNodeAsync("node-eu-west", "eu-west");
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = customer, plan_code = "basic", status = "active" }), 200);
        var token1 = stack.TokenFor(customer);
        var token2 = stack.TokenFor(customer);
        var device = await stack.SendJsonAsync(TestStack.WithBearer(token1, HttpMethod.Post, "/v1/devices", new { name = "laptop", public_key = TestStack.NewKey() }), 201);
        var deviceId = device.GetProperty("id").GetGuid();
        // With an Idempotency-Key, so that record has to go too.
        var start = TestStack.WithBearer(token2, HttpMethod.Post, "/v1/sessions", new { device_id = deviceId, region = "eu-west" });
        start.Headers.Add("Idempotency-Key", "first-start");
        var peers = await stack.CoreDataplane.CountPeersAsync(Ct);
        var session = await stack.SendJsonAsync(start, 201);
        Assert.Equal(peers + 1, await stack.CoreDataplane.CountPeersAsync(Ct));
        return new SeededAccount(customer, deviceId, session.GetProperty("session_id").GetGuid(), token1, token2, subject);
    }

    protected static async Task AssertRevokedAsync(TestStack stack, string token, string path = "/v1/me")
    {
        var problem = await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, path), 401);
        Assert.Equal("token_revoked", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task DeleteMe_CustomerWithDeviceSessionAndTwoTokens_204_TokensDead_PeerGone_NothingNamesIt()
    {
        await using var stack = await TestStack.StartAsync(store);
        var account = await SeedAsync(stack);
        var other = await stack.SendJsonAsync(TestStack.WithBearer(stack.TokenFor(Guid.NewGuid()), HttpMethod.Get, "/v1/me"), 200);

        await stack.SendJsonAsync(TestStack.WithBearer(account.Token1, HttpMethod.Delete, "/v1/me"), 204);

        await AssertRevokedAsync(stack, account.Token1);
        await AssertRevokedAsync(stack, account.Token2);
        await AssertRevokedAsync(stack, account.Token2, "/v1/devices");
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(Ct));
        // The legacy header cannot bring the id back either.
        var legacy = await stack.SendJsonAsync(TestStack.AsCustomer(account.CustomerId, HttpMethod.Get, "/v1/devices"), 401);
        Assert.Equal("token_revoked", legacy.GetProperty("code").GetString());
        // The store forgot the customer: no subscription, and the same sign-in identity now makes a new customer.
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/subscriptions/{account.CustomerId}"), 404);
        var again = await stack.EntryServices.GetRequiredService<IIdentityStore>().FindOrCreateAsync(Issuer, account.Subject, Ct);
        Assert.True(again.Created);
        Assert.NotEqual(account.CustomerId, again.CustomerId);

        var audit = await stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(1000, Ct);
        var erased = Assert.Single(audit, e => e.Action == "customer.erased");
        Assert.Equal("customer", erased.Actor);
        Assert.Null(erased.Subject);
        Assert.Equal("1", erased.Details["sessions_ended"]);
        var everything = JsonSerializer.Serialize(audit);
        foreach (var id in new[] { account.CustomerId, account.DeviceId, account.SessionId })
        {
            Assert.DoesNotContain(id.ToString(), everything, StringComparison.OrdinalIgnoreCase);
        }
        // Other customers are untouched.
        Assert.Equal(JsonValueKind.Object, other.ValueKind);
    }

    [Fact]
    public async Task DeleteMe_Unauthenticated_401_AndATokenOfAnUnknownCustomerStillErasesNothingElse()
    {
        await using var stack = await TestStack.StartAsync(store);
        var none = await stack.SendJsonAsync(new HttpRequestMessage(HttpMethod.Delete, "/v1/me"), 401);
        Assert.Equal("missing_token", none.GetProperty("code").GetString());
        var kept = await SeedAsync(stack);

        var stranger = stack.TokenFor(Guid.NewGuid());
        await stack.SendJsonAsync(TestStack.WithBearer(stranger, HttpMethod.Delete, "/v1/me"), 204);

        await AssertRevokedAsync(stack, stranger);
        await stack.SendJsonAsync(TestStack.WithBearer(kept.Token1, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(Ct));
    }

    [Fact]
    public async Task AdminDeleteCustomer_ErasesAndRevokes_UnknownId404_MalformedId400()
    {
        await using var stack = await TestStack.StartAsync(store);
        var account = await SeedAsync(stack);

        await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/customers/{account.CustomerId}"), 204);

        await AssertRevokedAsync(stack, account.Token1);
        await AssertRevokedAsync(stack, account.Token2);
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(Ct));
        var audit = await stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(1000, Ct);
        var erased = Assert.Single(audit, e => e.Action == "customer.erased");
        Assert.Equal("admin", erased.Actor);
        Assert.Null(erased.Subject);
        Assert.DoesNotContain(account.CustomerId.ToString(), JsonSerializer.Serialize(audit), StringComparison.OrdinalIgnoreCase);

        var again = await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/customers/{account.CustomerId}"), 404);
        Assert.Equal("customer_not_found", again.GetProperty("code").GetString());
        var unknown = await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/customers/{Guid.NewGuid()}"), 404);
        Assert.Equal("customer_not_found", unknown.GetProperty("code").GetString());
        var malformed = await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, "/v1/admin/customers/not-a-uuid"), 400);
        Assert.Equal("invalid_request", malformed.GetProperty("code").GetString());
    }

    [Fact]
    public async Task LogoutAll_RevokesEveryTokenOfTheCustomer_EndsTheSession_LaterTokensWork()
    {
        await using var stack = await TestStack.StartAsync(store);
        var account = await SeedAsync(stack);
        var otherCustomer = stack.TokenFor(Guid.NewGuid());

        await stack.SendJsonAsync(TestStack.WithBearer(account.Token1, HttpMethod.Post, "/v1/auth/logout-all"), 204);

        await AssertRevokedAsync(stack, account.Token1);
        await AssertRevokedAsync(stack, account.Token2);
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(Ct));
        await stack.SendJsonAsync(TestStack.WithBearer(otherCustomer, HttpMethod.Get, "/v1/me"), 200);
        // The account itself stays: a token issued afterwards (iat is whole seconds: from the next one) works.
        await Task.Delay(TimeSpan.FromSeconds(1.1), Ct);
        var fresh = stack.TokenFor(account.CustomerId);
        var problem = await stack.SendJsonAsync(TestStack.WithBearer(fresh, HttpMethod.Get, "/v1/sessions/current"), 404);
        Assert.Equal("no_active_session", problem.GetProperty("code").GetString());
        var devices = await stack.SendJsonAsync(TestStack.WithBearer(fresh, HttpMethod.Get, "/v1/devices"), 200);
        Assert.Single(devices.GetProperty("items").EnumerateArray());
        var audit = await stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(100, Ct);
        Assert.Equal("true", Assert.Single(audit, e => e.Action == "auth.logout_all").Details["session_ended"]);
    }

    [Fact]
    public async Task LogoutAll_WithLegacyHeaderOrNothing_401MissingToken()
    {
        await using var stack = await TestStack.StartAsync(store);
        var none = await stack.SendJsonAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/auth/logout-all"), 401);
        Assert.Equal("missing_token", none.GetProperty("code").GetString());
        var legacy = await stack.SendJsonAsync(TestStack.AsCustomer(Guid.NewGuid(), HttpMethod.Post, "/v1/auth/logout-all"), 401);
        Assert.Equal("missing_token", legacy.GetProperty("code").GetString());
    }

    [Fact]
    public async Task OpenApiAndPrivacyPolicy_DescribeErasure()
    {
        await using var stack = await TestStack.StartAsync(store);
        using var openApi = JsonDocument.Parse(await stack.Client.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative), Ct));
        var paths = openApi.RootElement.GetProperty("paths");
        Assert.True(paths.GetProperty("/v1/me").TryGetProperty("delete", out _));
        Assert.True(paths.GetProperty("/v1/auth/logout-all").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/v1/admin/customers/{customer_id}").TryGetProperty("delete", out _));

        var policy = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/privacy/policy"), 200);
        var erasure = policy.GetProperty("erasure");
        Assert.Contains(erasure.GetProperty("endpoints").EnumerateArray(), e => e.GetString()!.StartsWith("DELETE /v1/me", StringComparison.Ordinal));
        Assert.Contains(erasure.GetProperty("kept_afterwards").EnumerateArray(), e => e.GetString()!.Contains("SHA-256", StringComparison.Ordinal));
        Assert.Contains(erasure.GetProperty("deleted").EnumerateArray(), e => e.GetString()!.Contains("billing", StringComparison.Ordinal));
    }
}

public sealed class InMemoryErasureTests() : ErasureTests(StoreKind.InMemory);

/// <summary>
/// With the other timing-bound revocation tests (alone, after the parallel classes): the second-replica test asserts
/// the one-second bound.
/// </summary>
[Collection(nameof(RevocationTimingCollection))]
public sealed class PostgresErasureTests() : ErasureTests(StoreKind.Postgres)
{
    [Fact]
    public async Task DeleteMe_NoRowAnywhereNamesTheCustomer_RevocationKeyedByHashOnly()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.Postgres);
        var account = await SeedAsync(stack);
        var kept = await SeedAsync(stack);
        var dataSource = stack.EntryServices.GetRequiredService<NpgsqlDataSource>();
        // Sanity: before the erasure the scan does find the customer.
        Assert.NotEmpty(await RowsNamingAsync(dataSource, account.CustomerId));

        await stack.SendJsonAsync(TestStack.WithBearer(account.Token2, HttpMethod.Delete, "/v1/me"), 204);

        foreach (var id in new[] { account.CustomerId, account.DeviceId, account.SessionId })
        {
            var rows = await RowsNamingAsync(dataSource, id);
            Assert.True(rows.Count == 0, $"{id} still named by: {string.Join("; ", rows)}");
        }
        Assert.NotEmpty(await RowsNamingAsync(dataSource, kept.CustomerId));
        await using var revocation = dataSource.CreateCommand(
            "select erased, expires_at from revoked_customers where customer_key = sha256(uuid_send(@id))");
        revocation.Parameters.AddWithValue("id", account.CustomerId);
        await using var reader = await revocation.ExecuteReaderAsync(Ct);
        Assert.True(await reader.ReadAsync(Ct));
        Assert.True(reader.GetBoolean(0));
        // Kept no longer than the last token it covers can live: lifetime (1 h) plus the clock skew.
        Assert.InRange(reader.GetFieldValue<DateTimeOffset>(1), DateTimeOffset.UtcNow.AddMinutes(59), DateTimeOffset.UtcNow.AddMinutes(62));
    }

    [Fact]
    public async Task DeleteMe_SecondReplicaOnTheSameDatabase_RefusesBothTokensWithinOneSecond()
    {
        var server = await PostgresServer.SharedAsync();
        var settings = new Dictionary<string, string?> { ["DATABASE_URL"] = await server.CreateDatabaseAsync("erase") };
        await using var first = await TestStack.StartAsync(StoreKind.InMemory, settings);
        await using var second = await TestStack.StartAsync(StoreKind.InMemory, settings);
        var account = await SeedAsync(first);
        await second.SendJsonAsync(TestStack.WithBearer(account.Token1, HttpMethod.Get, "/v1/me"), 200);
        await second.SendJsonAsync(TestStack.WithBearer(account.Token2, HttpMethod.Get, "/v1/devices"), 200);

        await first.SendJsonAsync(TestStack.WithBearer(account.Token1, HttpMethod.Delete, "/v1/me"), 204);
        var erasedAt = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(1) - erasedAt.Elapsed is { Ticks: > 0 } rest ? rest : TimeSpan.Zero, Ct);

        await AssertRevokedAsync(second, account.Token1);
        await AssertRevokedAsync(second, account.Token2, "/v1/devices");
        Assert.Equal(0, await first.CoreDataplane.CountPeersAsync(Ct));
        // A replica started afterwards loads the revocation from the table.
        await using var third = await TestStack.StartAsync(StoreKind.InMemory, settings);
        await AssertRevokedAsync(third, account.Token2);
    }

    [Fact]
    public async Task LogoutAll_SecondReplica_RefusesBothTokensWithinOneSecond_NotificationsReportedNotRequired()
    {
        var server = await PostgresServer.SharedAsync();
        var settings = new Dictionary<string, string?> { ["DATABASE_URL"] = await server.CreateDatabaseAsync("logout_all") };
        await using var first = await TestStack.StartAsync(StoreKind.InMemory, settings);
        await using var second = await TestStack.StartAsync(StoreKind.InMemory, settings);
        var customer = Guid.NewGuid();
        var token1 = first.TokenFor(customer);
        var token2 = first.TokenFor(customer);
        await second.SendJsonAsync(TestStack.WithBearer(token2, HttpMethod.Get, "/v1/me"), 200);

        await first.SendJsonAsync(TestStack.WithBearer(token1, HttpMethod.Post, "/v1/auth/logout-all"), 204);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            using var response = await second.Client.SendAsync(TestStack.WithBearer(token2, HttpMethod.Get, "/v1/me"), Ct);
            if ((int)response.StatusCode == 401)
            {
                break;
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), "the second replica still accepted the token one second after logout-all");
            await Task.Delay(5, Ct);
        }
        TestContext.Current.SendDiagnosticMessage($"logout-all propagation: {clock.Elapsed.TotalMilliseconds:F0} ms");
        await AssertRevokedAsync(second, token1);
    }

    [Fact]
    public async Task ErasedId_CannotBeCreatedAgain_AdminSubscription409CustomerErased()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.Postgres);
        var account = await SeedAsync(stack);
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/customers/{account.CustomerId}"), 204);

        var problem = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions",
            new { customer_id = account.CustomerId, plan_code = "basic", status = "active" }), 409);
        Assert.Equal("customer_erased", problem.GetProperty("code").GetString());
        Assert.Empty(await RowsNamingAsync(stack.EntryServices.GetRequiredService<NpgsqlDataSource>(), account.CustomerId));
    }

    /// <summary>
    /// The race the trigger is for: a request that authenticated before the erasure inserts "customers (id) on conflict
    /// do nothing" while the erasure's transaction is open; it waits for it, and must then fail rather than recreate the row.
    /// </summary>
    [Fact]
    public async Task ErasedId_WriterWaitingOnTheErasure_FailsInsteadOfRecreatingIt()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.Postgres);
        var dataSource = stack.EntryServices.GetRequiredService<NpgsqlDataSource>();
        var customer = Guid.NewGuid();
        await using (var create = dataSource.CreateCommand("insert into customers (id) values (@id)"))
        {
            create.Parameters.AddWithValue("id", customer);
            await create.ExecuteNonQueryAsync(Ct);
        }
        await using var eraser = await dataSource.OpenConnectionAsync(Ct);
        await using var transaction = await eraser.BeginTransactionAsync(Ct);
        await using (var erase = new NpgsqlCommand(PostgresTokenRevocations.RevokeCustomerSql + ";delete from customers where id = @id", eraser, transaction))
        {
            PostgresTokenRevocations.AddParameters(erase.Parameters,
                CustomerRevocation.Create(customer, DateTimeOffset.UtcNow, erased: true,
                    stack.EntryServices.GetRequiredService<global::Vpn.Entry.Configuration.EntryOptions>().AccessTokens));
            erase.Parameters.AddWithValue("id", customer);
            await erase.ExecuteNonQueryAsync(Ct);
        }
        var writer = Task.Run(async () =>
        {
            await using var insert = dataSource.CreateCommand("insert into customers (id) values (@id) on conflict (id) do nothing");
            insert.Parameters.AddWithValue("id", customer);
            return await insert.ExecuteNonQueryAsync(Ct);
        }, Ct);
        // Let the writer reach its wait on the erasure's deleted row.
        await Task.Delay(500, Ct);
        Assert.False(writer.IsCompleted);
        await transaction.CommitAsync(Ct);

        var failure = await Assert.ThrowsAsync<PostgresException>(() => writer);
        Assert.Equal("VE001", failure.SqlState);
        Assert.Empty(await RowsNamingAsync(dataSource, customer));
    }

    /// <summary>Every row of every table whose text contains the id (a row's text form includes every column).</summary>
    private static async Task<List<string>> RowsNamingAsync(NpgsqlDataSource dataSource, Guid id)
    {
        var tables = new List<string>();
        await using (var list = dataSource.CreateCommand("select quote_ident(table_name) from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'"))
        await using (var reader = await list.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct))
            {
                tables.Add(reader.GetString(0));
            }
        }
        Assert.Contains("customers", tables);
        var found = new List<string>();
        foreach (var table in tables)
        {
            await using var scan = dataSource.CreateCommand($"select t::text from {table} t where t::text ilike '%' || @id || '%'");
            scan.Parameters.AddWithValue("id", id.ToString());
            await using var reader = await scan.ExecuteReaderAsync(Ct);
            while (await reader.ReadAsync(Ct))
            {
                found.Add($"{table}: {reader.GetString(0)}");
            }
        }
        return found;
    }
}
