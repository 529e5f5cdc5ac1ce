namespace Vpn.Entry.Tests.Devices;

/// <summary>
/// Device (and node) registration refuses WireGuard keys no peer can use: small-order points in any spelling,
/// non-canonical encodings of any point, and a registered node's own public key — 400 invalid_public_key, nothing stored.
/// </summary>
public abstract class DeviceKeyTests(StoreKind store) : IAsyncLifetime
{
    // 0, 1, the two points of order 8, p-1, p, p+1 (libsodium's has_small_order list), then the same with bit 255 set.
    public static readonly TheoryData<string> SmallOrderKeys =
    [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=", "X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=",
        "7P///////////////////////////////////////38=", "7f///////////////////////////////////////38=",
        "7v///////////////////////////////////////38=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=",
        "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuIA=", "X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEdc=",
        "7P////////////////////////////////////////8=", "7f////////////////////////////////////////8=",
        "7v////////////////////////////////////////8=",
    ];

    private TestStack _stack = null!;
    private Customer _customer = null!;

    public async ValueTask InitializeAsync()
    {
        _stack = await TestStack.StartAsync(store);
        _customer = await _stack.SeedCustomerAsync();
    }

    public async ValueTask DisposeAsync() => await _stack.DisposeAsync();

    private async Task AssertDeviceRefusedAsync(string key)
    {
        var problem = await _stack.SendJsonAsync(TestStack.AsCustomer(_customer.Id, HttpMethod.Post, "/v1/devices", new { name = "weak", public_key = key }), 400);
        Assert.Equal("invalid_public_key", problem.GetProperty("code").GetString());
        Assert.DoesNotContain(key, problem.ToString(), StringComparison.Ordinal);
        var devices = await _stack.SendJsonAsync(TestStack.AsCustomer(_customer.Id, HttpMethod.Get, "/v1/devices"), 200);
        Assert.Equal(1, devices.GetProperty("items").GetArrayLength());
    }

    private static string WithBit255(string key)
    {
        var bytes = Convert.FromBase64String(key);
        bytes[^1] |= 0x80;
        return Convert.ToBase64String(bytes);
    }

    [Theory]
    [MemberData(nameof(SmallOrderKeys))]
    public Task RegisterDevice_SmallOrderKey_InvalidPublicKey(string key) => AssertDeviceRefusedAsync(key);

    [Fact]
    public async Task RegisterDevice_NonCanonicalSpellingOfAGoodKey_InvalidPublicKey_CanonicalAccepted()
    {
        var key = TestStack.NewKey();
        await AssertDeviceRefusedAsync(WithBit255(key));
        // p+2 .. 2^255-1 spell 2 .. 18 again.
        await AssertDeviceRefusedAsync("8P///////////////////////////////////////38=");
        await AssertDeviceRefusedAsync("/////////////////////////////////////////38=");
        await _stack.SendJsonAsync(TestStack.AsCustomer(_customer.Id, HttpMethod.Post, "/v1/devices", new { name = "good", public_key = key }), 201);
    }

    [Fact]
    public async Task RegisterDevice_RegisteredNodesOwnKey_InvalidPublicKey()
    {
        var nodes = await _stack.SendJsonAsync(_stack.Admin(HttpMethod.Get, "/v1/admin/nodes"), 200);
        var nodeKey = nodes.GetProperty("items")[0].GetProperty("public_key").GetString()!;
        await AssertDeviceRefusedAsync(nodeKey);
        await AssertDeviceRefusedAsync(WithBit255(nodeKey));
    }

    [Theory]
    [InlineData("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuIA=")]
    [InlineData("/////////////////////////////////////////38=")]
    public async Task RegisterNode_UnusableKey_InvalidPublicKey(string key)
    {
        using var request = _stack.Admin(HttpMethod.Post, "/v1/admin/nodes");
        request.Content = new StringContent($$"""
            {"name": "weak-node", "region": "eu-west", "public_endpoint": "203.0.113.9:51820", "public_key": "{{key}}",
             "core_endpoint": "{{TestStack.DefaultCoreEndpoint}}", "capacity": 10}
            """, Encoding.UTF8, "application/json");
        var problem = await _stack.SendJsonAsync(request, 400);
        Assert.Equal("invalid_public_key", problem.GetProperty("code").GetString());
    }
}

public sealed class InMemoryDeviceKeyTests() : DeviceKeyTests(StoreKind.InMemory);

public sealed class PostgresDeviceKeyTests() : DeviceKeyTests(StoreKind.Postgres);
