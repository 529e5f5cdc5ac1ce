namespace Vpn.Entry.Tests.Data;

/// <summary>
/// APP_ENTRY_REPLICAS × APP_DB_POOL_SIZE + APP_DB_RESERVED_CONNECTIONS against a real server's max_connections: entry
/// refuses to start when the fleet would not fit, reports the budget as readiness check <c>connection_budget</c>, and
/// skips the check with APP_DB_CHECK_BUDGET=false (PgBouncer).
/// </summary>
public sealed class ConnectionBudgetTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ReplicasTimesPoolAboveMaxConnections_EntryRefusesToStart()
    {
        await using var server = await PostgresServer.StartNewAsync();
        await SetMaxConnectionsAsync(server, 50);
        var settings = Settings(await server.CreateDatabaseAsync("budget"), ("APP_DB_POOL_SIZE", "20"), ("APP_ENTRY_REPLICAS", "3"));

        var refused = await Assert.ThrowsAnyAsync<Exception>(() => TestStack.StartAsync(StoreKind.InMemory, settings));

        var message = refused.ToString();
        Assert.Contains("Connection budget exceeded", message, StringComparison.Ordinal);
        Assert.Contains("APP_DB_POOL_SIZE 20 × APP_ENTRY_REPLICAS 3 + APP_DB_RESERVED_CONNECTIONS 5 = 65 > max_connections 50", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FleetFits_StartsAndReadinessReportsTheBudget()
    {
        await using var server = await PostgresServer.StartNewAsync();
        await SetMaxConnectionsAsync(server, 50);
        var settings = Settings(await server.CreateDatabaseAsync("budget"), ("APP_DB_POOL_SIZE", "15"), ("APP_ENTRY_REPLICAS", "3"));
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, settings);

        var check = await ConnectionBudgetCheckAsync(stack);

        Assert.True(check.GetProperty("ok").GetBoolean());
        Assert.Equal("APP_DB_POOL_SIZE 15 × APP_ENTRY_REPLICAS 3 + APP_DB_RESERVED_CONNECTIONS 5 = 50 ≤ max_connections 50", check.GetProperty("detail").GetString());
        Assert.Equal(15, new NpgsqlConnectionStringBuilder(stack.EntryServices.GetRequiredService<EntryOptions>().DatabaseConnectionString).MaxPoolSize);
    }

    [Fact]
    public async Task CheckDisabled_StartsDespiteTheBudget_ReadinessSaysNotChecked()
    {
        await using var server = await PostgresServer.StartNewAsync();
        await SetMaxConnectionsAsync(server, 50);
        var settings = Settings(await server.CreateDatabaseAsync("budget"), ("APP_DB_POOL_SIZE", "20"), ("APP_ENTRY_REPLICAS", "3"),
            ("APP_DB_CHECK_BUDGET", "false"));
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, settings);

        var check = await ConnectionBudgetCheckAsync(stack);

        Assert.True(check.GetProperty("ok").GetBoolean());
        Assert.StartsWith("not checked (APP_DB_CHECK_BUDGET=false)", check.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    // The private server's max_connections is the harness's 300; a restart applies the smaller one.
    private static async Task SetMaxConnectionsAsync(PostgresServer server, int max)
    {
        await using (var connection = new NpgsqlConnection(server.AdminConnectionString))
        {
            await connection.OpenAsync(Ct);
            await using var alter = new NpgsqlCommand($"alter system set max_connections = {max}", connection);
            await alter.ExecuteNonQueryAsync(Ct);
        }
        NpgsqlConnection.ClearAllPools();
        await server.StopAsync();
        await server.StartAsync();
    }

    private static Dictionary<string, string?> Settings(string connectionString, params (string Name, string Value)[] extra)
    {
        // The URL form carries no pool settings of the harness's: APP_DB_POOL_SIZE decides.
        var settings = new Dictionary<string, string?> { ["DATABASE_URL"] = PostgresServer.ToUrl(connectionString) };
        foreach (var (name, value) in extra)
        {
            settings[name] = value;
        }
        return settings;
    }

    private static async Task<JsonElement> ConnectionBudgetCheckAsync(TestStack stack)
    {
        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, "/v1/admin/readiness"), Ct);
        var report = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.Clone();
        return report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "connection_budget");
    }
}
