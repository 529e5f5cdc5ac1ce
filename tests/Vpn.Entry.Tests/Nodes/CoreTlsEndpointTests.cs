using Grpc.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using static Vpn.Entry.Tests.Nodes.CoreTlsKit;

namespace Vpn.Entry.Tests.Nodes;

/// <summary>
/// Which core endpoints entry dials while APP_REQUIRE_CORE_TLS is on or off (a cleartext endpoint is refused without
/// connecting, at registration and per call), and entry's admin API reaching a TLS core with its real channel factory.
/// </summary>
public sealed class CoreTlsEndpointTests : IDisposable
{
    private readonly TestCertificates _pki = new();

    public void Dispose() => _pki.Dispose();

    [Theory]
    [InlineData("http://127.0.0.1:{0}")]
    [InlineData("127.0.0.1:{0}")]
    public async Task GetNodeStatus_CleartextToTlsPort_Fails(string endpoint)
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);

        await AssertRefusedAsync(Factory(_pki.Ca, _pki.Client, require: false), string.Format(endpoint, core.Port));
    }

    [Theory]
    [InlineData("http://127.0.0.1:{0}")]
    [InlineData("127.0.0.1:{0}")]
    [InlineData("HTTP://127.0.0.1:{0}")]
    public async Task GetNodeStatus_CleartextEndpointWhileRequired_RefusedWithoutConnecting(string endpoint)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var error = await AssertRefusedAsync(Factory(_pki.Ca, _pki.Client, require: true), string.Format(endpoint, port));

        Assert.Contains(Causes(error), e => e is HttpRequestException && e.Message.Contains("APP_REQUIRE_CORE_TLS", StringComparison.Ordinal));
        Assert.False(await AcceptsWithinAsync(listener, TimeSpan.FromMilliseconds(500)), "entry dialled a cleartext core endpoint while TLS is required");
    }

    [Fact]
    public async Task GetNodeStatus_CleartextEndpointNotRequired_Dials()
    {
        // The other side of the test above: the listener does see entry when cleartext is allowed.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var channel = Factory(_pki.Ca, _pki.Client, require: false).Create($"http://127.0.0.1:{port}");
        var call = new VpnControl.VpnControlClient(channel).GetNodeStatusAsync(new GetNodeStatusRequest(),
            deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(await AcceptsWithinAsync(listener, CallDeadline), "entry never dialled the cleartext endpoint");
        await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
    }

    [Fact]
    public async Task CoreStatus_ThroughEntryWithTlsSettings_ReachesTlsCore()
    {
        var status = await CoreStatusThroughEntryAsync(entryTrusts: _pki.Ca, expectedStatus: 200);

        Assert.Equal("10.64.0.0/20", status.GetProperty("client_pool").GetString());
    }

    [Fact]
    public async Task CoreStatus_ThroughEntryTrustingOtherCa_NodeUnavailable()
    {
        var problem = await CoreStatusThroughEntryAsync(entryTrusts: _pki.OtherCa, expectedStatus: 502);

        Assert.Equal("node_unavailable", problem.GetProperty("code").GetString());
    }

    /// <summary>GET /v1/admin/core/status of a node whose core serves TLS, from an entry that trusts <paramref name="entryTrusts"/>.</summary>
    private async Task<JsonElement> CoreStatusThroughEntryAsync(TestCertificate entryTrusts, int expectedStatus)
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, EntrySettings(entryTrusts, _pki.Client, require: true), RealCoreChannels);
        var nodeId = await RegisterAsync(stack, "node-tls", $"https://127.0.0.1:{core.Port}", 201);
        return await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/core/status?node_id={nodeId}"), expectedStatus);
    }

    [Theory]
    [InlineData("http://127.0.0.1:1")]
    [InlineData("127.0.0.1:1")]
    [InlineData("core.internal:50051")]
    public async Task RegisterNode_CleartextCoreEndpointWhileRequired_Invalid(string coreEndpoint)
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_REQUIRE_CORE_TLS"] = "true" });

        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Post, "/v1/admin/nodes", NodeBody("node-plain", coreEndpoint)),
            TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = System.Text.Json.JsonDocument.Parse(text);
        Assert.Equal("invalid_request", problem.RootElement.GetProperty("code").GetString());
        Assert.Contains("APP_REQUIRE_CORE_TLS", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var nodes = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/nodes"), 200);
        Assert.Empty(nodes.GetProperty("items").EnumerateArray());
    }

    [Theory]
    [InlineData("https://127.0.0.1:1")]
    [InlineData("https://core.internal:50051")]
    [InlineData("unix:/run/vpn/core.sock")]
    public async Task RegisterNode_SecureCoreEndpointWhileRequired_Registered(string coreEndpoint)
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_REQUIRE_CORE_TLS"] = "true" });

        await RegisterAsync(stack, "node-secure", coreEndpoint, 201);
        await RegisterAsync(stack, "node-secure", coreEndpoint, 200);
    }

    [Fact]
    public async Task RegisterNode_CleartextCoreEndpointNotRequired_Registered()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_REQUIRE_CORE_TLS"] = "false" });

        await RegisterAsync(stack, "node-plain", "http://127.0.0.1:1", 201);
    }

    private static object NodeBody(string name, string coreEndpoint) => new
    {
        name, region = "eu-west", country_code = "DE", city_code = "fra", pool = "default", public_endpoint = "203.0.113.7:51820",
        public_key = TestStack.NewKey(), core_endpoint = coreEndpoint, capacity = 100,
    };

    private static async Task<Guid> RegisterAsync(TestStack stack, string name, string coreEndpoint, int expectedStatus)
    {
        var node = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/nodes", NodeBody(name, coreEndpoint)), expectedStatus);
        Assert.Equal(coreEndpoint, node.GetProperty("core_endpoint").GetString());
        return node.GetProperty("id").GetGuid();
    }

    // TestStack serves cores in-process; these tests want entry's own factory, built from entry's settings.
    private static void RealCoreChannels(IServiceCollection services)
    {
        services.RemoveAll<ICoreChannelFactory>();
        services.AddSingleton<ICoreChannelFactory, CoreChannelFactory>();
    }
}
