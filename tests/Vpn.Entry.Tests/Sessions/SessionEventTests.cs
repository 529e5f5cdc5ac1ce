using System.Net.Http.Json;

namespace Vpn.Entry.Tests.Sessions;

/// <summary>
/// GET /v1/sessions/current/events on both stores, against the real HTTP pipeline and in-process cores: the first
/// event names the session; superseded, ended (with the reason) and moved arrive as the change happens; a reconnect
/// with Last-Event-ID gets what it missed from the database; keep-alives, limits, the token's end and the app's stop.
/// </summary>
public abstract class SessionEventTests(StoreKind store)
{
    private const string Path = "/v1/sessions/current/events";
    private const string CoreB = "core-b.test:50051";

    internal static HttpRequestMessage Events(Guid customer, string? lastEventId = null)
    {
        var request = TestStack.AsCustomer(customer, HttpMethod.Get, Path);
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }
        return request;
    }

    internal static HttpRequestMessage Start(Customer c, Guid? device = null, bool replace = false) =>
        TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = device ?? c.DeviceId, region = "eu-west", replace_existing = replace });

    internal static async Task<Guid> SecondDeviceAsync(TestStack stack, Customer c) =>
        (await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/devices", new { name = "phone", public_key = TestStack.NewKey() }), 201))
            .GetProperty("id").GetGuid();

    /// <summary>A stream on the customer's active session, its first event (current) read.</summary>
    private static async Task<(SseStream Stream, SseMessage Current)> OpenAsync(TestStack stack, HttpRequestMessage request)
    {
        var stream = await SseStream.OpenOkAsync(stack.Client, request);
        var current = await stream.NextEventAsync();
        Assert.Equal("current", current.Event);
        return (stream, current);
    }

    [Fact]
    public async Task Open_ActiveSession_StreamingHeadersAndCurrentEvent()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var session = await stack.SendJsonAsync(Start(c), 201);

        var (stream, current) = await OpenAsync(stack, Events(c.Id));
        await using var _s = stream;

        Assert.Equal("text/event-stream", stream.Response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", stream.Response.Headers.CacheControl?.ToString());
        Assert.Equal("no", Assert.Single(stream.Response.Headers.GetValues("X-Accel-Buffering")));
        var id = session.GetProperty("session_id").GetGuid();
        Assert.Equal($"{id:D}/{c.NodeId:D}", current.Id);
        var data = current.Json;
        Assert.Equal(id, data.GetProperty("session_id").GetGuid());
        Assert.Equal("current", data.GetProperty("kind").GetString());
        Assert.Equal("node-eu-west", data.GetProperty("node").GetProperty("name").GetString());
        Assert.Equal("eu-west", data.GetProperty("node").GetProperty("region").GetString());
        // Nothing about the node beyond where it is: no endpoint, no key.
        Assert.False(data.GetProperty("node").TryGetProperty("endpoint", out _));
        Assert.False(data.GetProperty("node").TryGetProperty("public_key", out _));
        // The gauge is served (its value is not asserted: parallel in-process hosts share series by meter name, last value wins).
        Assert.Contains("vpn_session_event_streams", await stack.Client.GetStringAsync(new Uri("/metrics", UriKind.Relative),
            TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_NoSessionOrNoAuth_ProblemsAsDeclared()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();

        var none = await stack.SendJsonAsync(Events(c.Id), 404);
        var anonymous = await stack.SendJsonAsync(new HttpRequestMessage(HttpMethod.Get, Path), 401);
        var badToken = await stack.SendJsonAsync(TestStack.WithBearer("not-a-token", HttpMethod.Get, Path), 401);
        var badId = await stack.SendJsonAsync(Events(c.Id, "not an id"), 400);

        Assert.Equal("no_active_session", none.GetProperty("code").GetString());
        Assert.Equal("missing_token", anonymous.GetProperty("code").GetString());
        Assert.Equal("invalid_token", badToken.GetProperty("code").GetString());
        Assert.Equal("invalid_request", badId.GetProperty("code").GetString());
        using var raw = await stack.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, Path), TestContext.Current.CancellationToken);
        Assert.Equal("application/problem+json", raw.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task ReplacedByAnotherDevice_Superseded_ThenStreamEnds()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var phone = await SecondDeviceAsync(stack, c);
        var first = await stack.SendJsonAsync(Start(c), 201);
        var (stream, _) = await OpenAsync(stack, Events(c.Id));
        await using var _s = stream;

        await stack.SendJsonAsync(Start(c, phone, replace: true), 201);

        var events = await stream.ReadToEndAsync();
        var superseded = Assert.Single(events);
        Assert.Equal("superseded", superseded.Event);
        Assert.Equal(first.GetProperty("session_id").GetGuid(), superseded.Json.GetProperty("session_id").GetGuid());
        Assert.Equal("replaced", superseded.Json.GetProperty("reason").GetString());
        Assert.Equal($"{first.GetProperty("session_id").GetGuid():D}/end", superseded.Id);
    }

    [Fact]
    public async Task DeviceDeleted_EndedWithReason()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(Start(c), 201);
        var (stream, _) = await OpenAsync(stack, Events(c.Id));
        await using var _s = stream;

        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Delete, $"/v1/devices/{c.DeviceId}"), 204);

        var ended = Assert.Single(await stream.ReadToEndAsync());
        Assert.Equal("ended", ended.Event);
        Assert.Equal("device_deleted", ended.Json.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task SubscriptionCanceledByAdmin_EndedWithEntitlementReason()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(Start(c), 201);
        var (stream, _) = await OpenAsync(stack, Events(c.Id));
        await using var _s = stream;

        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = c.Id, plan_code = "basic", status = "canceled" }), 200);

        var ended = Assert.Single(await stream.ReadToEndAsync());
        Assert.Equal("ended", ended.Event);
        Assert.Equal("subscription_canceled", ended.Json.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task DrainWithMigrate_MovedToTheNewNode_StreamGoesOn()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var session = await stack.SendJsonAsync(Start(c), 201);
        var b = await stack.RegisterNodeAsync("node-b", "eu-west", coreEndpoint: CoreB);
        var (stream, _) = await OpenAsync(stack, Events(c.Id));
        await using var _s = stream;

        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, $"/v1/admin/nodes/{c.NodeId}/drain", new { migrate = true }), 200);

        var moved = await stream.NextEventAsync();
        Assert.Equal("moved", moved.Event);
        Assert.Equal($"{session.GetProperty("session_id").GetGuid():D}/{b:D}", moved.Id);
        Assert.Equal("node_drain", moved.Json.GetProperty("reason").GetString());
        Assert.Equal(b, moved.Json.GetProperty("node").GetProperty("id").GetGuid());
        Assert.Equal("node-b", moved.Json.GetProperty("node").GetProperty("name").GetString());
        // Still streaming: the session ends later and that arrives too.
        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
        var ended = Assert.Single(await stream.ReadToEndAsync());
        Assert.Equal("customer_request", ended.Json.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Reconnect_WithLastEventId_GetsTheMissedEndThen204()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var session = await stack.SendJsonAsync(Start(c), 201);
        var (stream, current) = await OpenAsync(stack, Events(c.Id));
        await stream.DisposeAsync();

        // Missed while disconnected; then a new session starts (the stream is about the one it was told of).
        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
        await stack.SendJsonAsync(Start(c), 201);
        var resumed = await SseStream.OpenOkAsync(stack.Client, Events(c.Id, current.Id));
        await using var _r = resumed;

        var ended = Assert.Single(await resumed.ReadToEndAsync());
        Assert.Equal("ended", ended.Event);
        Assert.Equal(session.GetProperty("session_id").GetGuid(), ended.Json.GetProperty("session_id").GetGuid());
        Assert.Equal("customer_request", ended.Json.GetProperty("reason").GetString());
        // Told of the end: nothing more to say about that session (EventSource stops on 204).
        var (after, none) = await SseStream.OpenAsync(stack.Client, Events(c.Id, ended.Id));
        using var _a = after;
        Assert.Equal(HttpStatusCode.NoContent, after.StatusCode);
        Assert.Null(none);
    }

    [Fact]
    public async Task Reconnect_WithLastEventIdAfterAMissedMove_GetsMovedAndGoesOn()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(Start(c), 201);
        var b = await stack.RegisterNodeAsync("node-b", "eu-west", coreEndpoint: CoreB);
        var (stream, current) = await OpenAsync(stack, Events(c.Id));
        await stream.DisposeAsync();

        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, $"/v1/admin/nodes/{c.NodeId}/drain", new { migrate = true }), 200);
        await WaitUntilAsync(async () => (await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200))
            .GetProperty("node").GetProperty("id").GetGuid() == b);
        var resumed = await SseStream.OpenOkAsync(stack.Client, Events(c.Id, current.Id));
        await using var _r = resumed;

        var moved = await resumed.NextEventAsync();
        Assert.Equal("moved", moved.Event);
        Assert.Equal("node_drain", moved.Json.GetProperty("reason").GetString());
        Assert.Equal("node-b", moved.Json.GetProperty("node").GetProperty("name").GetString());
        // Resuming from the moved event's id: nothing missed, the stream stays open (a keep-alive or an event would follow).
        var again = await SseStream.OpenOkAsync(stack.Client, Events(c.Id, moved.Id));
        await using var _g = again;
        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
        Assert.Equal("ended", Assert.Single(await again.ReadToEndAsync()).Event);
    }

    [Fact]
    public async Task ConnectAfterTheSessionEnded_BareSessionIdLearnsWhy()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var phone = await SecondDeviceAsync(stack, c);
        var id = (await stack.SendJsonAsync(Start(c), 201)).GetProperty("session_id").GetGuid();
        await stack.SendJsonAsync(Start(c, phone, replace: true), 201);

        var late = await SseStream.OpenOkAsync(stack.Client, Events(c.Id, id.ToString()));
        await using var _l = late;

        var superseded = Assert.Single(await late.ReadToEndAsync());
        Assert.Equal("superseded", superseded.Event);
        Assert.Equal("replaced", superseded.Json.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Heartbeat_KeepaliveCommentsWhileIdle()
    {
        await using var stack = await TestStack.StartAsync(store, new Dictionary<string, string?> { ["APP_SESSION_EVENTS_HEARTBEAT_SECS"] = "1" });
        var c = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(Start(c), 201);
        var (stream, _) = await OpenAsync(stack, Events(c.Id));
        await using var _s = stream;

        var first = await stream.NextAsync();
        var second = await stream.NextAsync();

        Assert.Equal("keepalive", first?.Comment);
        Assert.Equal("keepalive", second?.Comment);
    }

    [Fact]
    public async Task StreamsPerCustomer_Bounded_429UntilOneCloses()
    {
        await using var stack = await TestStack.StartAsync(store, new Dictionary<string, string?> { ["APP_SESSION_EVENTS_MAX_PER_CUSTOMER"] = "1" });
        var c = await stack.SeedCustomerAsync();
        var other = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(Start(c), 201);
        await stack.SendJsonAsync(Start(other), 201);
        var (stream, _) = await OpenAsync(stack, Events(c.Id));

        using var refused = await stack.Client.SendAsync(Events(c.Id), TestContext.Current.CancellationToken);
        var (otherStream, _) = await OpenAsync(stack, Events(other.Id));
        await otherStream.DisposeAsync();

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        Assert.Equal("too_many_streams", problem.GetProperty("code").GetString());
        await stream.DisposeAsync();
        // The slot is released when the server sees the client leave.
        await WaitUntilAsync(async () =>
        {
            var (response, again) = await SseStream.OpenAsync(stack.Client, Events(c.Id));
            using var _ = response;
            if (again is null)
            {
                return false;
            }
            await again.DisposeAsync();
            return true;
        });
    }

    [Fact]
    public async Task StreamsPerReplica_Bounded_503ServerBusy()
    {
        await using var stack = await TestStack.StartAsync(store, new Dictionary<string, string?> { ["APP_SESSION_EVENTS_MAX_STREAMS"] = "1" });
        var c = await stack.SeedCustomerAsync();
        var other = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(Start(c), 201);
        await stack.SendJsonAsync(Start(other), 201);
        var (stream, _) = await OpenAsync(stack, Events(c.Id));
        await using var _s = stream;

        using var refused = await stack.Client.SendAsync(Events(other.Id), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        Assert.Equal("server_busy", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task BearerToken_Revoked_StreamEnds()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(Start(c), 201);
        var token = stack.TokenFor(c.Id);
        var (stream, _) = await OpenAsync(stack, TestStack.WithBearer(token, HttpMethod.Get, Path));
        await using var _s = stream;

        await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Post, "/v1/auth/logout"), 204);

        Assert.Empty(await stream.ReadToEndAsync());
        var refused = await stack.SendJsonAsync(TestStack.WithBearer(token, HttpMethod.Get, Path), 401);
        Assert.Equal("token_revoked", refused.GetProperty("code").GetString());
    }

    [Fact]
    public async Task BearerToken_Expires_StreamEnds()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(Start(c), 201);
        // A token as entry issues them, but living two seconds.
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var token = Auth.Jws.Hmac(new Dictionary<string, object?> { ["alg"] = "HS256", ["kid"] = TestStack.JwtKid, ["typ"] = "at+jwt" },
            new Dictionary<string, object?>
            {
                ["iss"] = "vpn-entry", ["aud"] = "vpn-api", ["sub"] = c.Id.ToString(), ["iat"] = now, ["nbf"] = now, ["exp"] = now + 2,
                ["jti"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
            }, Encoding.UTF8.GetBytes(TestStack.JwtSecret));
        var (stream, _) = await OpenAsync(stack, TestStack.WithBearer(token, HttpMethod.Get, Path));
        await using var _s = stream;

        // Ended by the server at the token's exp (within the liveness bound), with no event: the session is untouched.
        Assert.Empty(await stream.ReadToEndAsync());
        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
    }

    [Fact]
    public async Task ApplicationStops_OpenStreamsComplete()
    {
        var stack = await TestStack.StartAsync(store);
        SseStream stream;
        try
        {
            var c = await stack.SeedCustomerAsync();
            await stack.SendJsonAsync(Start(c), 201);
            (stream, _) = await OpenAsync(stack, Events(c.Id));
        }
        catch
        {
            await stack.DisposeAsync();
            throw;
        }
        await using var _s = stream;
        var reading = stream.ReadToEndAsync();

        // Stopping waits for in-flight requests: a stream that ignored the stop would hold it up (the liveness bound fails it).
        await Task.Run(() => stack.DisposeAsync().AsTask(), TestContext.Current.CancellationToken).WaitAsync(SseStream.Liveness, TestContext.Current.CancellationToken);

        Assert.Empty(await reading);
    }

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < SseStream.Liveness, "condition never held");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}

public sealed class InMemorySessionEventTests() : SessionEventTests(StoreKind.InMemory);

public sealed class PostgresSessionEventTests() : SessionEventTests(StoreKind.Postgres);
