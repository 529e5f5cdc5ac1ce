namespace Vpn.Entry.Tests.Nodes;

/// <summary>The bytes of the internal node API core reads: names, order and formats of the desired-peer set.</summary>
public sealed class NodeApiWireTests
{
    [Fact]
    public async Task DesiredPeers_ActiveSession_AnswersTheContractBytes()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory);
        var customer = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 201);

        using var request = stack.Admin(HttpMethod.Get, $"/v1/internal/nodes/{customer.NodeId}/peers");
        using var response = await stack.Client.SendAsync(request, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        using var json = JsonDocument.Parse(text);
        var peer = json.RootElement.GetProperty("peers")[0];
        string Raw(JsonElement e, string name) => e.GetProperty(name).GetRawText();
        Assert.Equal(
            $"{{\"node_id\":\"{customer.NodeId:D}\",\"generated_at\":{Raw(json.RootElement, "generated_at")},\"peers\":[{{" +
            $"\"session_id\":{Raw(peer, "session_id")},\"public_key\":{Raw(peer, "public_key")},\"address\":\"10.64.0.2/32\"," +
            $"\"state\":\"active\",\"address_v6\":\"fd64:6400::2/128\",\"claim_seq\":{Raw(peer, "claim_seq")}}}]}}",
            text);
        Assert.Matches("^\"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\"$", Raw(peer, "session_id"));
        Assert.True(peer.GetProperty("claim_seq").GetInt64() > 0);
        Assert.Equal(DateTimeOffset.UtcNow, json.RootElement.GetProperty("generated_at").GetDateTimeOffset(), TimeSpan.FromMinutes(5));
    }
}
