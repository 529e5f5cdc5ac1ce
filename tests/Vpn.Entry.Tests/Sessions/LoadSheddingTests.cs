using Vpn.Entry.Http;

namespace Vpn.Entry.Tests.Sessions;

/// <summary>
/// Storm shedding (issue 13): a node's bounded Connect queue (503 node_busy), the replica's admission of starts and
/// reconnects (503 server_busy), and the jittered Retry-After on every 502/503. Core is held by
/// <see cref="ConnectAnswers.BeforeConnect"/> in front of the real in-process core, so "busy" is real, not simulated.
/// </summary>
public abstract class LoadSheddingTests(StoreKind store)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static HttpRequestMessage Start(Customer c) =>
        TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" });

    private static async Task<(int Status, JsonElement Body, int? RetryAfter)> SendAsync(TestStack stack, HttpRequestMessage request)
    {
        using var response = await stack.Client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        int? retryAfter = response.Headers.RetryAfter?.Delta is { } delta ? (int)delta.TotalSeconds : null;
        return ((int)response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), retryAfter);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var waited = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), $"timed out waiting until {what}");
            await Task.Delay(10, Ct);
        }
    }

    /// <summary>Core held: Connects wait here until released; counts how many arrived.</summary>
    private sealed class HeldCore
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _arrived;

        public int Arrived => Volatile.Read(ref _arrived);

        public Task Connect(string endpoint)
        {
            Interlocked.Increment(ref _arrived);
            return _release.Task;
        }

        public void Release() => _release.TrySetResult();
    }

    [Fact]
    public async Task NodeConnectQueueFull_NextStartAnswers503NodeBusyAtOnce_NothingClaimed_QueuedStartsAllSucceed()
    {
        var held = new HeldCore();
        await using var answers = new ConnectAnswers { BeforeConnect = held.Connect };
        await using var stack = await TestStack.StartAsync(store, new Dictionary<string, string?>
        {
            ["APP_CORE_CONCURRENCY_PER_NODE"] = "2",
            ["APP_CORE_QUEUE_PER_NODE"] = "1",
            ["APP_CORE_TIMEOUT_MS"] = "30000",
        }, answers.Install);
        var customers = new List<Customer>();
        for (var i = 0; i < 4; i++)
        {
            customers.Add(await stack.SeedCustomerAsync());
        }
        var gate = stack.EntryServices.GetRequiredService<NodeCallGate>();
        var nodeId = customers[0].NodeId;

        // Two Connects at core, one waiting in the node's queue: the node is full.
        var inFlight = customers.Take(3).Select(c => SendAsync(stack, Start(c))).ToList();
        await WaitUntilAsync(() => held.Arrived == 2 && gate.IsFull(nodeId), "two Connects are at core and one is queued");

        var (status, body, retryAfter) = await SendAsync(stack, Start(customers[3]));
        Assert.Equal(503, status);
        Assert.Equal("node_busy", body.GetProperty("code").GetString());
        Assert.InRange(retryAfter ?? -1, 1, 5);
        Assert.Equal(retryAfter, body.GetProperty("retry_after").GetInt32());
        Assert.Equal(2, held.Arrived);
        Assert.Null(await stack.EntryServices.GetRequiredService<ISessionStore>().GetLiveIdAsync(customers[3].Id, Ct));

        held.Release();
        var answered = await Task.WhenAll(inFlight);
        Assert.All(answered, a => Assert.Equal(201, a.Status));
        // Busy was momentary: the same customer's retry goes through.
        Assert.Equal(201, (await SendAsync(stack, Start(customers[3]))).Status);
        Assert.Equal(4, (await stack.CoreDataplane.ReadAsync(Ct)).Peers.Count);
    }

    [Fact]
    public async Task AdmissionFull_StartAnswers503ServerBusyBeforeAnyWork_AdmittedAndQueuedStartsSucceed()
    {
        var held = new HeldCore();
        await using var answers = new ConnectAnswers { BeforeConnect = held.Connect };
        await using var stack = await TestStack.StartAsync(store, new Dictionary<string, string?>
        {
            ["APP_SESSION_ADMISSION_CONCURRENCY"] = "1",
            ["APP_SESSION_ADMISSION_QUEUE"] = "1",
            ["APP_SESSION_ADMISSION_WAIT_MS"] = "30000",
            ["APP_CORE_TIMEOUT_MS"] = "30000",
            ["APP_RETRY_AFTER_MIN_SECS"] = "2",
            ["APP_RETRY_AFTER_MAX_SECS"] = "9",
        }, answers.Install);
        var a = await stack.SeedCustomerAsync();
        var b = await stack.SeedCustomerAsync();
        var c = await stack.SeedCustomerAsync();
        var admission = stack.EntryServices.GetRequiredService<SessionAdmission>();

        var first = SendAsync(stack, Start(a));
        await WaitUntilAsync(() => held.Arrived == 1, "the admitted start is at core");
        var second = SendAsync(stack, Start(b));
        await WaitUntilAsync(() => admission.Statistics?.CurrentQueuedCount == 1, "the second start waits for admission");

        var (status, body, retryAfter) = await SendAsync(stack, Start(c));
        Assert.Equal(503, status);
        Assert.Equal("server_busy", body.GetProperty("code").GetString());
        Assert.InRange(retryAfter ?? -1, 2, 9);
        // Refused before any work: customer c has no session and core never saw a third Connect.
        Assert.Null(await stack.EntryServices.GetRequiredService<ISessionStore>().GetLiveIdAsync(c.Id, Ct));
        Assert.Equal(1, held.Arrived);

        held.Release();
        Assert.Equal(201, (await first).Status);
        Assert.Equal(201, (await second).Status);
        Assert.Equal(201, (await SendAsync(stack, Start(c))).Status);
    }

    /// <summary>Ten starts with a dead node (nothing listens on its core's port) and a live one: (502 count, 201 count).</summary>
    protected async Task<(int BadGateway, int Started)> StartTenWithADeadNodeAsync(string unreachableSecs)
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store, new Dictionary<string, string?> { ["APP_NODE_UNREACHABLE_SECS"] = unreachableSecs });
        var customers = new List<Customer>();
        for (var i = 0; i < 10; i++)
        {
            customers.Add(await stack.SeedCustomerAsync());
        }
        // The dead node is the least loaded from the first session on (nothing lands there), so selection prefers it whenever it may.
        await CoreRoutes.RegisterNodeAsync(stack, "dead-core", CoreRoutes.ClosedLoopbackEndpoint());
        var statuses = new List<int>();
        var trace = new List<string>();
        foreach (var c in customers)
        {
            var (status, body, _) = await SendAsync(stack, Start(c));
            statuses.Add(status);
            trace.Add(status == 201 ? $"201@{body.GetProperty("node").GetProperty("name").GetString()}" : $"{status} {body.GetProperty("code").GetString()}");
        }
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(", ", trace));
        Assert.All(statuses, s => Assert.True(s is 201 or 502, string.Join(", ", trace)));
        return (statuses.Count(s => s == 502), statuses.Count(s => s == 201));
    }

    [Fact]
    public async Task CoreGivesNoAnswer_NodePassedOverForAWhile_FollowingStartsGoToTheLiveNode()
    {
        var (badGateway, started) = await StartTenWithADeadNodeAsync("30");
        // Only the start that found the core dead answers 502 (none, if the tie at first went to the live node and
        // kept it loaded... it does not: the dead node is emptier from then on, so exactly one start finds it dead).
        Assert.Equal(1, badGateway);
        Assert.Equal(9, started);
    }

    [Fact]
    public async Task EveryNodeUnavailable502_CarriesAJitteredRetryAfterWithinTheBounds()
    {
        await using var stack = await TestStack.StartAsync(store, new Dictionary<string, string?>
        {
            ["APP_RETRY_AFTER_MIN_SECS"] = "3",
            ["APP_RETRY_AFTER_MAX_SECS"] = "7",
        });
        var c = await stack.SeedCustomerAsync();
        stack.CoreDown = true;
        var seen = new HashSet<int>();
        for (var i = 0; i < 30; i++)
        {
            var (status, body, retryAfter) = await SendAsync(stack, Start(c));
            Assert.Equal(502, status);
            Assert.Equal("node_unavailable", body.GetProperty("code").GetString());
            Assert.InRange(retryAfter ?? -1, 3, 7);
            Assert.Equal(retryAfter, body.GetProperty("retry_after").GetInt32());
            seen.Add(retryAfter!.Value);
        }
        // Jitter: 30 draws from 5 values all equal would have probability 5^-29.
        Assert.True(seen.Count > 1, $"every Retry-After was {string.Join(",", seen)}");
        stack.CoreDown = false;
        Assert.Equal(201, (await SendAsync(stack, Start(c))).Status);
    }
}

public sealed class InMemoryLoadSheddingTests() : LoadSheddingTests(StoreKind.InMemory)
{
    // In-memory only: there a failed start leaves the dead node's load at zero, so least-loaded keeps choosing it. (With
    // PostgreSQL the node cache also counts the failed claim until its next refresh, which hides the contrast.)
    [Fact]
    public async Task CoreGivesNoAnswer_WithThePassOverOff_EveryStartGoesToTheDeadNode()
    {
        // The contrast that shows the test above measures the pass-over, not luck: without it, least-loaded picks the dead node every time.
        var (badGateway, started) = await StartTenWithADeadNodeAsync("0");
        // (Both nodes are empty at first, a tie broken at random: the first start may land on the live one.)
        Assert.InRange(badGateway, 9, 10);
        Assert.Equal(10 - badGateway, started);
    }
}

public sealed class PostgresLoadSheddingTests() : LoadSheddingTests(StoreKind.Postgres);
