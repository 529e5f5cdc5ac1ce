namespace Vpn.Entry.Tests.Sessions;

/// <summary>
/// Every session is dual-stack in entry: the answer, the wg-quick file, the stored row and the desired peers carry the
/// IPv6 address core assigned; a core without IPv6 still gets ::/0 routed into the tunnel; a malformed answer is a
/// failed start. Core's answers are shaped by <see cref="ConnectAnswers"/> in front of the real in-process core.
/// </summary>
public abstract class DualStackSessionTests(StoreKind store)
{
    private const string SecondCore = "core2.test:50051";

    private static HttpRequestMessage Start(Customer c) =>
        TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" });

    private static HttpRequestMessage Reconnect(Customer c, string key) =>
        TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = key });

    private static ConnectResponse WithoutIpv6(ConnectResponse answer)
    {
        var v4Only = answer.Clone();
        v4Only.AssignedAddressV6 = "";
        v4Only.Dns.Clear();
        v4Only.Dns.Add("10.64.0.1");
        return v4Only;
    }

    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];

    private static async Task<JsonElement> DesiredPeersAsync(TestStack stack, Guid nodeId) =>
        (await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/internal/nodes/{nodeId}/peers"), 200)).GetProperty("peers");

    [Fact]
    public async Task StartSession_DualStackCore_AnswersBothFamiliesInInterfacePeerAndWgQuickFile()
    {
        await using var answers = new ConnectAnswers { Rewrite = (_, answer) => ConnectAnswers.DualStack(answer) };
        await using var stack = await TestStack.StartAsync(store, configureServices: answers.Install);
        var customer = await stack.SeedCustomerAsync();

        var session = await stack.SendJsonAsync(Start(customer), 201);

        var iface = session.GetProperty("interface");
        var v4 = iface.GetProperty("address").GetString()!;
        Assert.Matches(@"^10\.64\.\d+\.\d+/32$", v4);
        var v6 = ConnectAnswers.DualStack(new ConnectResponse { AssignedAddress = v4 }).AssignedAddressV6;
        Assert.Equal([v4, v6], Strings(iface.GetProperty("addresses")));
        Assert.Equal(["10.64.0.1", "fd64:6400::1"], Strings(iface.GetProperty("dns")));
        var peer = session.GetProperty("peer");
        Assert.Equal(["0.0.0.0/0", "::/0"], Strings(peer.GetProperty("allowed_ips")));
        Assert.Equal(
            "[Interface]\n" +
            "PrivateKey = <your device private key>\n" +
            $"Address = {v4}, {v6}\n" +
            "DNS = 10.64.0.1, fd64:6400::1\n" +
            "\n" +
            "[Peer]\n" +
            $"PublicKey = {peer.GetProperty("public_key").GetString()}\n" +
            "Endpoint = 203.0.113.7:51820\n" +
            "AllowedIPs = 0.0.0.0/0, ::/0\n" +
            "PersistentKeepalive = 25\n",
            session.GetProperty("wireguard_config").GetString());
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));

        // What was stored answers the same afterwards: GET current, a reconnect that stays, the desired peers.
        var current = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(iface.GetRawText(), current.GetProperty("interface").GetRawText());
        Assert.Equal(session.GetProperty("wireguard_config").GetString(), current.GetProperty("wireguard_config").GetString());
        var reconnected = await stack.SendJsonAsync(Reconnect(customer, session.GetProperty("session_key").GetString()!), 200);
        Assert.Equal(iface.GetRawText(), reconnected.GetProperty("interface").GetRawText());
        var desired = Assert.Single((await DesiredPeersAsync(stack, customer.NodeId)).EnumerateArray());
        Assert.Equal((v4, v6), (desired.GetProperty("address").GetString(), desired.GetProperty("address_v6").GetString()));
    }

    [Fact]
    public async Task StartSession_CoreWithoutIpv6_Ipv4OnlyAddressesButBothFamiliesRouted()
    {
        await using var answers = new ConnectAnswers { Rewrite = (_, answer) => WithoutIpv6(answer) };
        await using var stack = await TestStack.StartAsync(store, configureServices: answers.Install);
        var customer = await stack.SeedCustomerAsync();

        var session = await stack.SendJsonAsync(Start(customer), 201);

        var v4 = session.GetProperty("interface").GetProperty("address").GetString()!;
        Assert.Equal([v4], Strings(session.GetProperty("interface").GetProperty("addresses")));
        Assert.Equal(["10.64.0.1"], Strings(session.GetProperty("interface").GetProperty("dns")));
        Assert.Equal(["0.0.0.0/0", "::/0"], Strings(session.GetProperty("peer").GetProperty("allowed_ips")));
        var config = session.GetProperty("wireguard_config").GetString()!;
        Assert.Contains($"\nAddress = {v4}\nDNS = 10.64.0.1\n", config, StringComparison.Ordinal);
        Assert.Contains("\nAllowedIPs = 0.0.0.0/0, ::/0\n", config, StringComparison.Ordinal);
        var desired = Assert.Single((await DesiredPeersAsync(stack, customer.NodeId)).EnumerateArray());
        Assert.Equal(JsonValueKind.Null, desired.GetProperty("address_v6").ValueKind);
    }

    public static TheoryData<string, string, string, string> MalformedAnswers => new()
    {
        // why, assigned_address ("" = core's own), assigned_address_v6, dns (comma-separated)
        { "ipv6 network, not a host", "", "fd64:6400::/64", "10.64.0.1,fd64:6400::1" },
        { "ipv6 without prefix", "", "fd64:6400::2", "10.64.0.1" },
        { "ipv4 as ipv6", "", "10.64.0.2/32", "10.64.0.1" },
        { "ipv4-mapped ipv6", "", "::ffff:10.64.0.2/128", "10.64.0.1" },
        { "non-canonical ipv6", "", "FD64:6400:0::2/128", "10.64.0.1" },
        { "ipv6 with a zone", "", "fe80::2%1/128", "10.64.0.1" },
        { "not an address", "", "not-an-address", "10.64.0.1" },
        { "ipv6 smuggling a config line", "", "fd64:6400::2/128\nPostUp = curl evil", "10.64.0.1" },
        { "ipv4 network, not a host", "10.64.0.0/24", "fd64:6400::2/128", "10.64.0.1" },
        { "ipv6 as ipv4", "fd64:6400::2/128", "", "10.64.0.1" },
        { "ipv4 without prefix", "10.64.0.2", "", "10.64.0.1" },
        { "sloppy ipv4", "10.64.2/32", "", "10.64.0.1" },
        { "no ipv4", "-", "fd64:6400::2/128", "10.64.0.1" },
        { "dns smuggling a config line", "", "fd64:6400::2/128", "10.64.0.1\nPostUp = curl evil" },
        { "dns not an address", "", "fd64:6400::2/128", "resolver.example" },
    };

    [Theory]
    [MemberData(nameof(MalformedAnswers))]
    public async Task StartSession_MalformedCoreAnswer_502NodeUnavailableAndNothingLeftBehind(string why, string v4, string v6, string dns)
    {
        Assert.False(string.IsNullOrEmpty(why));
        var malformed = true;
        await using var answers = new ConnectAnswers
        {
            Rewrite = (_, answer) =>
            {
                if (!malformed)
                {
                    return ConnectAnswers.DualStack(answer);
                }
                var bad = answer.Clone();
                bad.AssignedAddress = v4 switch { "" => answer.AssignedAddress, "-" => "", _ => v4 };
                bad.AssignedAddressV6 = v6;
                bad.Dns.Clear();
                bad.Dns.AddRange(dns.Split(','));
                return bad;
            },
        };
        await using var stack = await TestStack.StartAsync(store, configureServices: answers.Install);
        var customer = await stack.SeedCustomerAsync();

        var problem = await stack.SendJsonAsync(Start(customer), 502);

        Assert.Equal("node_unavailable", problem.GetProperty("code").GetString());
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        Assert.Empty((await DesiredPeersAsync(stack, customer.NodeId)).EnumerateArray());
        // The customer's slot was freed: once core answers properly, the same start succeeds.
        malformed = false;
        await stack.SendJsonAsync(Start(customer), 201);
    }

    [Fact]
    public async Task Reconnect_MovesFromIpv4OnlyToDualStackNode_NewAddressesStoredAndListed()
    {
        await using var answers = new ConnectAnswers
        {
            Rewrite = (endpoint, answer) => endpoint == SecondCore ? ConnectAnswers.DualStack(answer) : WithoutIpv6(answer),
        };
        await using var stack = await TestStack.StartAsync(store, configureServices: answers.Install);
        var customer = await stack.SeedCustomerAsync();
        var session = await stack.SendJsonAsync(Start(customer), 201);
        Assert.Single(Strings(session.GetProperty("interface").GetProperty("addresses")));
        var second = await stack.RegisterNodeAsync("node-eu-west-2", "eu-west", coreEndpoint: SecondCore);
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = customer.NodeId, healthy = false, active_peer_count = 1 }), 204);

        var moved = await stack.SendJsonAsync(Reconnect(customer, session.GetProperty("session_key").GetString()!), 200);

        Assert.Equal(second, moved.GetProperty("node").GetProperty("id").GetGuid());
        var v4 = moved.GetProperty("interface").GetProperty("address").GetString()!;
        var v6 = ConnectAnswers.DualStack(new ConnectResponse { AssignedAddress = v4 }).AssignedAddressV6;
        Assert.Equal([v4, v6], Strings(moved.GetProperty("interface").GetProperty("addresses")));
        Assert.Contains($"\nAddress = {v4}, {v6}\nDNS = 10.64.0.1, fd64:6400::1\n", moved.GetProperty("wireguard_config").GetString()!, StringComparison.Ordinal);
        var current = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(moved.GetProperty("interface").GetRawText(), current.GetProperty("interface").GetRawText());
        Assert.Empty((await DesiredPeersAsync(stack, customer.NodeId)).EnumerateArray());
        Assert.Equal(v6, Assert.Single((await DesiredPeersAsync(stack, second)).EnumerateArray()).GetProperty("address_v6").GetString());
    }

    [Fact]
    public async Task Reconnect_OnlyOtherNodeAnswersMalformedIpv6_NoNodeAndSessionStaysAsItWas()
    {
        await using var answers = new ConnectAnswers
        {
            Rewrite = (endpoint, answer) =>
            {
                var dual = ConnectAnswers.DualStack(answer);
                if (endpoint == SecondCore)
                {
                    dual.AssignedAddressV6 = "fd64:6400::/64";
                }
                return dual;
            },
        };
        await using var stack = await TestStack.StartAsync(store, configureServices: answers.Install);
        var customer = await stack.SeedCustomerAsync();
        var session = await stack.SendJsonAsync(Start(customer), 201);
        await stack.RegisterNodeAsync("node-eu-west-2", "eu-west", coreEndpoint: SecondCore);
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = customer.NodeId, healthy = false, active_peer_count = 1 }), 204);

        // As for a core that fails outright: the node is passed over, and with none left there is no node to move to.
        var problem = await stack.SendJsonAsync(Reconnect(customer, session.GetProperty("session_key").GetString()!), 503);

        Assert.Equal("no_nodes_available_in_region", problem.GetProperty("code").GetString());
        Assert.Equal(0, await stack.CoreFor(SecondCore).CountPeersAsync(default));
        var current = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(customer.NodeId, current.GetProperty("node").GetProperty("id").GetGuid());
        Assert.Equal(session.GetProperty("interface").GetRawText(), current.GetProperty("interface").GetRawText());
        // The failed move rotated nothing: the same key still reconnects.
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = customer.NodeId, healthy = true, active_peer_count = 1 }), 204);
        await stack.SendJsonAsync(Reconnect(customer, session.GetProperty("session_key").GetString()!), 200);
    }

    [Fact]
    public async Task OpenApi_SessionAndDesiredPeers_ShowTheIpv6Fields()
    {
        await using var stack = await TestStack.StartAsync(store);

        using var document = JsonDocument.Parse(await stack.Client.GetStringAsync("/openapi/v1.json"));

        var schemas = document.RootElement.GetProperty("components").GetProperty("schemas");
        var iface = schemas.GetProperty("SessionInterfaceView").GetProperty("properties");
        Assert.True(iface.TryGetProperty("address", out _));
        Assert.Equal("array", iface.GetProperty("addresses").GetProperty("type").GetString());
        Assert.True(schemas.GetProperty("NodePeerDto").GetProperty("properties").TryGetProperty("address_v6", out _));
    }
}

public sealed class InMemoryDualStackSessionTests() : DualStackSessionTests(StoreKind.InMemory);

public sealed class PostgresDualStackSessionTests() : DualStackSessionTests(StoreKind.Postgres);
