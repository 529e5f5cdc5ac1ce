using Grpc.Net.Client;
using Vpn.Harness;

namespace Vpn.Entry.Tests.Nodes;

/// <summary>
/// entry's channel to a core across a restart of the core process: a real core (noop dataplane) as its own process on a
/// loopback TCP port, dialled by entry's production channel factory, SIGKILLed and started again on the same port.
/// </summary>
public sealed class CoreRestartTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StartSession_CoreKilledStartsFailedMeanwhileThenRestarted_FirstStartAfterRestartCreated()
    {
        await using var routes = new CoreRoutes();
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, configureServices: routes.Install);
        var port = RepositoryPaths.FreeLoopbackPort();
        // Entry reaches core through a port the test opens and closes with the process, so the first start comes the
        // instant core is reachable again, not whenever its start-up happens to finish.
        await using var front = TcpForwarder.ToTcp(new IPEndPoint(IPAddress.Loopback, port));
        var core = await CoreProcess.StartAsync(port);
        front.Open();
        try
        {
            // Only the real core's node is a candidate: the seeded node of the in-process core reports itself unhealthy.
            var first = await stack.SeedCustomerAsync();
            await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = first.NodeId, healthy = false, active_peer_count = 0 }), 204);
            var node = await CoreRoutes.RegisterNodeAsync(stack, "node-real-core", $"http://127.0.0.1:{front.Port}");
            var created = await stack.SendJsonAsync(Start(first), 201);
            Assert.Equal(node, created.GetProperty("node").GetProperty("id").GetGuid());
            // Ended again: this core does not reconcile, so after its restart it would hand out the same address anew.
            await stack.SendJsonAsync(TestStack.AsCustomer(first.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);

            await core.DisposeAsync();
            await front.CloseAsync();
            // Starts while core is down fail (502, nothing left behind) — and used to leave entry's channel in a reconnect
            // backoff (1 s, growing to 120 s) that failed every call at once, without dialling, until its next attempt.
            for (var i = 0; i < 3; i++)
            {
                var problem = await stack.SendJsonAsync(Start(await AnotherCustomerAsync(stack, first)), 502);
                Assert.Equal("node_unavailable", problem.GetProperty("code").GetString());
            }
            var after = await AnotherCustomerAsync(stack, first);
            core = await CoreProcess.StartAsync(port);
            front.Open();

            // The first start after the restart goes through: the channel dials the new process at once.
            using var response = await stack.Client.SendAsync(Start(after), Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Created, $"first start after the restart: {(int)response.StatusCode} {body}");
        }
        finally
        {
            await core.DisposeAsync();
        }
    }

    private static HttpRequestMessage Start(Customer c) =>
        TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" });

    /// <summary>A new subscribed customer with a device, on the plan <paramref name="like"/> was seeded with.</summary>
    private static async Task<Customer> AnotherCustomerAsync(TestStack stack, Customer like)
    {
        var id = Guid.NewGuid();
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = id, plan_code = "basic", status = "active" }), 200);
        var device = await stack.SendJsonAsync(TestStack.AsCustomer(id, HttpMethod.Post, "/v1/devices", new { name = "laptop", public_key = TestStack.NewKey() }), 201);
        return new Customer(id, device.GetProperty("id").GetGuid(), like.NodeId);
    }

    /// <summary>Vpn.Core (noop dataplane, no reconciliation: synced from the start) as a child process on 127.0.0.1:port.</summary>
    private sealed class CoreProcess : IAsyncDisposable
    {
        private readonly BackgroundProcess _process;
        private int _disposed;

        private CoreProcess(BackgroundProcess process) => _process = process;

        public string Output => _process.Output;

        public static async Task<CoreProcess> StartAsync(int port)
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "Vpn.Core.dll");
            var process = new BackgroundProcess("dotnet", [dll], new Dictionary<string, string?>
            {
                ["WG_DATAPLANE"] = "noop",
                ["CORE_GRPC_LISTEN"] = $"127.0.0.1:{port}",
                ["CORE_ENTRY_URL"] = null,
                ["ASPNETCORE_URLS"] = null,
                ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            });
            var core = new CoreProcess(process);
            // An answered RPC on a channel of its own, not just an accepting port.
            using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
            var client = new VpnControl.VpnControlClient(channel);
            var clock = Stopwatch.StartNew();
            while (true)
            {
                Assert.False(process.HasExited, $"core exited during start:\n{process.Output}");
                try
                {
                    await client.GetNodeStatusAsync(new GetNodeStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: Ct);
                    return core;
                }
                catch (Grpc.Core.RpcException) when (clock.Elapsed < TimeSpan.FromSeconds(30))
                {
                    await Task.Delay(50, Ct);
                }
            }
        }

        /// <summary>SIGKILL, as a crash would.</summary>
        public ValueTask DisposeAsync() => Interlocked.Exchange(ref _disposed, 1) == 0 ? _process.DisposeAsync() : ValueTask.CompletedTask;
    }
}
