// In the generated client's namespace, so its request types win over entry's own of the same names.
namespace Vpn.Entry.Tests.Generated;

/// <summary>
/// The OpenAPI document is usable: a C# client generated from docs/openapi/v1.json by NSwag at build time (see the
/// project file) runs an app's and an operator's golden path against entry on PostgreSQL, problems included.
/// </summary>
public sealed class GeneratedClientGoldenPathTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GeneratedClient_OperatorSetsUp_AppSignsUpDeviceStartsReconnectsAndEnds()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.Postgres);
        using var adminHttp = stack.CreateClient();
        adminHttp.DefaultRequestHeaders.Add("x-admin-token", TestStack.AdminToken);
        var admin = new EntryApiClient(adminHttp);

        // The operator: a plan, a node (served by the in-process core) that heartbeats healthy, a subscription.
        var plan = await admin.UpsertPlanAsync(new UpsertPlanRequest { Code = "gold", Name = "Gold", Max_devices = 2, Allowed_regions = ["eu-west"] }, Ct);
        Assert.Equal("gold", plan.Code);
        var node = await admin.RegisterNodeAsync(new RegisterNodeRequest
        {
            Name = "gen-node", Region = "eu-west", Country_code = "DE", City_code = "fra", Pool = "default",
            Public_endpoint = "203.0.113.7:51820", Public_key = TestStack.NewKey(), Core_endpoint = TestStack.DefaultCoreEndpoint, Capacity = 100,
        }, Ct);
        await admin.PostNodeHeartbeatAsync(new NodeHeartbeatDto { Node_id = node.Id.ToString(), Healthy = true, Active_peer_count = 0 }, Ct);
        var customerId = Guid.NewGuid();
        await admin.SetSubscriptionAsync(new SetSubscriptionRequest { Customer_id = customerId.ToString(), Plan_code = "gold", Status = "active" }, Ct);

        // The app, with the customer's bearer token.
        using var appHttp = stack.CreateClient();
        appHttp.DefaultRequestHeaders.Authorization = new("Bearer", stack.TokenFor(customerId));
        var app = new EntryApiClient(appHttp);
        var me = await app.GetMeAsync(Ct);
        Assert.Equal(customerId, me.Customer_id);
        Assert.Equal("gold", me.Subscription!.Plan_code);

        var device = await app.RegisterDeviceAsync(new RegisterDeviceRequest { Name = "phone", Public_key = TestStack.NewKey() }, Ct);
        var request = new StartSessionRequest { Device_id = device.Id.ToString(), Region = "eu-west" };
        var started = await app.StartSessionAsync(request, idempotency_Key: "gen-start-1", cancellationToken: Ct);
        Assert.Equal("active", started.State);
        Assert.Equal(node.Id, started.Node.Id);
        Assert.Contains("PrivateKey = <your device private key>", started.Wireguard_config, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(started.Session_key));

        // A retry with the same Idempotency-Key answers the same session; a start without replace is a 409 the client reads.
        var replayed = await app.StartSessionAsync(request, idempotency_Key: "gen-start-1", cancellationToken: Ct);
        Assert.Equal(started.Session_id, replayed.Session_id);
        var conflict = await Assert.ThrowsAnyAsync<ApiException>(() => app.StartSessionAsync(request, cancellationToken: Ct));
        Assert.Equal(409, conflict.StatusCode);
        Assert.Equal("session_conflict", ProblemOf(conflict).Code);

        var current = await app.GetCurrentSessionAsync(Ct);
        Assert.Equal(started.Session_id, current.Session_id);
        Assert.Null(current.Session_key);
        var reconnected = await app.ReconnectSessionAsync(new ReconnectRequest { Session_key = replayed.Session_key }, Ct);
        Assert.Equal(started.Session_id, reconnected.Session_id);
        Assert.NotEqual(replayed.Session_key, reconnected.Session_key);
        var staleKey = await Assert.ThrowsAnyAsync<ApiException>(() => app.ReconnectSessionAsync(new ReconnectRequest { Session_key = replayed.Session_key }, Ct));
        Assert.Equal(401, staleKey.StatusCode);
        Assert.Equal("invalid_session_key", ProblemOf(staleKey).Code);

        await app.EndCurrentSessionAsync(Ct);
        var none = await Assert.ThrowsAnyAsync<ApiException>(() => app.GetCurrentSessionAsync(Ct));
        Assert.Equal(404, none.StatusCode);
        Assert.Equal("no_active_session", ProblemOf(none).Code);

        // The operator's reports through the same client.
        var history = await admin.GetSubscriptionHistoryAsync(customerId.ToString(), Ct);
        Assert.Equal("active", Assert.Single(history.Items).Status);
        Assert.Contains((await admin.ListNodesAsync(Ct)).Items, n => n.Id == node.Id && n.Healthy);
        var wrongToken = new EntryApiClient(stack.CreateClient());
        var unauthorized = await Assert.ThrowsAnyAsync<ApiException>(() => wrongToken.ListPlansAsync(Ct));
        Assert.Equal(401, unauthorized.StatusCode);
        Assert.Equal("unauthorized", ProblemOf(unauthorized).Code);
    }

    // Every problem response type the generator made derives from the document's Problem schema.
    private static Problem ProblemOf(ApiException exception) =>
        Assert.IsAssignableFrom<Problem>(exception.GetType().GetProperty("Result")?.GetValue(exception));
}
