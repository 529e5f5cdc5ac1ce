namespace Vpn.Entry.Tests.Http;

/// <summary>
/// What an attacker or a buggy app sends, on every endpoint: each answers 4xx problem+json with the contract's code,
/// never a 500, and nothing stored is lost (checked at the end).
/// </summary>
public abstract class BadInputTests(StoreKind store)
{
    private const string Zero = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    internal enum Auth
    {
        Customer,
        Admin,
        None,
        OtherCustomer,
    }

    // {device}: the customer's device; {node}: the registered node; {key}: a fresh valid key.
    private static readonly CaseList Cases = new()
    {
        // Devices
        { "device: wrong JSON type", Auth.Customer, "POST", "/v1/devices", """{"name": 5, "public_key": "{key}"}""", 400, "invalid_request" },
        { "device: not JSON", Auth.Customer, "POST", "/v1/devices", "name=laptop", 400, "invalid_request" },
        { "device: JSON null body", Auth.Customer, "POST", "/v1/devices", "null", 400, "invalid_request" },
        { "device: array body", Auth.Customer, "POST", "/v1/devices", "[]", 400, "invalid_request" },
        { "device: missing name", Auth.Customer, "POST", "/v1/devices", """{"public_key": "{key}"}""", 400, "invalid_request" },
        { "device: control chars in name", Auth.Customer, "POST", "/v1/devices", """{"name": "a\u0000b", "public_key": "{key}"}""", 400, "invalid_request" },
        { "device: long name", Auth.Customer, "POST", "/v1/devices", "{\"name\": \"" + new string('x', 65) + "\", \"public_key\": \"{key}\"}", 400, "invalid_request" },
        { "device: missing key", Auth.Customer, "POST", "/v1/devices", """{"name": "x"}""", 400, "invalid_public_key" },
        { "device: malformed key", Auth.Customer, "POST", "/v1/devices", """{"name": "x", "public_key": "not-base64!"}""", 400, "invalid_public_key" },
        { "device: short key", Auth.Customer, "POST", "/v1/devices", """{"name": "x", "public_key": "AAAA"}""", 400, "invalid_public_key" },
        { "device: all-zero key", Auth.Customer, "POST", "/v1/devices", "{\"name\": \"x\", \"public_key\": \"" + Zero + "\"}", 400, "invalid_public_key" },
        { "device: key as number", Auth.Customer, "POST", "/v1/devices", """{"name": "x", "public_key": 12}""", 400, "invalid_request" },
        { "device: oversized body", Auth.Customer, "POST", "/v1/devices", "{\"name\": \"" + new string('x', 70_000) + "\"}", 413, "invalid_request" },
        { "device: delete unknown", Auth.Customer, "DELETE", "/v1/devices/" + Guid.Empty, null, 404, "device_not_found" },
        { "device: delete not a uuid", Auth.Customer, "DELETE", "/v1/devices/'%20or%201=1--", null, 404, "device_not_found" },
        { "device: delete foreign", Auth.OtherCustomer, "DELETE", "/v1/devices/{device}", null, 404, "device_not_found" },
        { "device: no auth", Auth.None, "GET", "/v1/devices", null, 401, "missing_token" },
        // Sessions
        { "session: missing device_id", Auth.Customer, "POST", "/v1/sessions", """{"region": "eu-west"}""", 400, "invalid_request" },
        { "session: missing region", Auth.Customer, "POST", "/v1/sessions", """{"device_id": "{device}"}""", 400, "invalid_request" },
        { "session: device_id not uuid", Auth.Customer, "POST", "/v1/sessions", """{"device_id": "abc", "region": "eu-west"}""", 400, "invalid_request" },
        { "session: region wrong type", Auth.Customer, "POST", "/v1/sessions", """{"device_id": "{device}", "region": ["eu-west"]}""", 400, "invalid_request" },
        { "session: region injection", Auth.Customer, "POST", "/v1/sessions", """{"device_id": "{device}", "region": "eu' or '1'='1"}""", 400, "invalid_request" },
        { "session: replace_existing wrong type", Auth.Customer, "POST", "/v1/sessions", """{"device_id": "{device}", "region": "eu-west", "replace_existing": "yes"}""", 400, "invalid_request" },
        { "session: node_hint not uuid", Auth.Customer, "POST", "/v1/sessions", """{"device_id": "{device}", "region": "eu-west", "node_hint": "node-1"}""", 400, "invalid_node_hint" },
        { "session: unknown device", Auth.Customer, "POST", "/v1/sessions", "{\"device_id\": \"" + Guid.Empty + "\", \"region\": \"eu-west\"}", 404, "device_not_found" },
        { "session: foreign device", Auth.OtherCustomer, "POST", "/v1/sessions", """{"device_id": "{device}", "region": "eu-west"}""", 404, "device_not_found" },
        { "session: region not in plan", Auth.Customer, "POST", "/v1/sessions", """{"device_id": "{device}", "region": "ap-south"}""", 403, "region_not_allowed" },
        { "session: deeply nested", Auth.Customer, "POST", "/v1/sessions", "{\"device_id\": " + new string('[', 100) + new string(']', 100) + "}", 400, "invalid_request" },
        { "session: current without any", Auth.Customer, "GET", "/v1/sessions/current", null, 404, "no_active_session" },
        { "session: bad customer header", Auth.None, "GET", "/v1/sessions/current", null, 401, "missing_token" },
        // Admin
        { "admin: no token", Auth.None, "GET", "/v1/admin/nodes", null, 401, "unauthorized" },
        { "admin: customer is not admin", Auth.Customer, "GET", "/v1/admin/plans", null, 401, "unauthorized" },
        { "node: missing fields", Auth.Admin, "POST", "/v1/admin/nodes", """{"name": "n1"}""", 400, "invalid_request" },
        { "node: capacity as string", Auth.Admin, "POST", "/v1/admin/nodes", """{"name": "n1", "region": "eu-west", "public_endpoint": "1.2.3.4:51820", "public_key": "{key}", "core_endpoint": "c:1", "capacity": "10"}""", 400, "invalid_request" },
        { "node: capacity above wireguard-go limit", Auth.Admin, "POST", "/v1/admin/nodes", """{"name": "n1", "region": "eu-west", "public_endpoint": "1.2.3.4:51820", "public_key": "{key}", "core_endpoint": "c:1", "capacity": 70000}""", 400, "invalid_request" },
        { "node: capacity at wireguard-go limit", Auth.Admin, "POST", "/v1/admin/nodes", """{"name": "n1", "region": "eu-west", "public_endpoint": "1.2.3.4:51820", "public_key": "{key}", "core_endpoint": "c:1", "capacity": 65536}""", 400, "invalid_request" },
        { "node: drain migrate as string", Auth.Admin, "POST", "/v1/admin/nodes/{node}/drain", """{"migrate": "yes"}""", 400, "invalid_request" },
        { "node: drain duplicate key", Auth.Admin, "POST", "/v1/admin/nodes/{node}/drain", """{"migrate": true, "migrate": false}""", 400, "invalid_request" },
        { "node: zero key", Auth.Admin, "POST", "/v1/admin/nodes", "{\"name\": \"n1\", \"region\": \"eu-west\", \"public_endpoint\": \"1.2.3.4:51820\", \"public_key\": \"" + Zero + "\", \"core_endpoint\": \"c:1\", \"capacity\": 10}", 400, "invalid_public_key" },
        { "node: bad endpoint", Auth.Admin, "POST", "/v1/admin/nodes", """{"name": "n1", "region": "eu-west", "public_endpoint": "no-port", "public_key": "{key}", "core_endpoint": "c:1", "capacity": 10}""", 400, "invalid_request" },
        { "node: bad core endpoint", Auth.Admin, "POST", "/v1/admin/nodes", """{"name": "n1", "region": "eu-west", "public_endpoint": "1.2.3.4:51820", "public_key": "{key}", "core_endpoint": "ftp://x/y?z", "capacity": 10}""", 400, "invalid_request" },
        { "health: unknown node", Auth.Admin, "POST", "/v1/internal/nodes/health", "{\"node_id\": \"" + Guid.Empty + "\", \"healthy\": true, \"active_peer_count\": 0}", 404, "node_not_found" },
        { "health: healthy as string", Auth.Admin, "POST", "/v1/internal/nodes/health", """{"node_id": "{node}", "healthy": "true", "active_peer_count": 0}""", 400, "invalid_request" },
        { "health: negative peers", Auth.Admin, "POST", "/v1/internal/nodes/health", """{"node_id": "{node}", "healthy": true, "active_peer_count": -1}""", 400, "invalid_request" },
        { "health: missing healthy", Auth.Admin, "POST", "/v1/internal/nodes/health", """{"node_id": "{node}", "active_peer_count": 1}""", 400, "invalid_request" },
        { "plan: max_devices out of range", Auth.Admin, "POST", "/v1/admin/plans", """{"code": "p", "name": "P", "max_devices": -1, "allowed_regions": []}""", 400, "invalid_request" },
        { "plan: regions wrong type", Auth.Admin, "POST", "/v1/admin/plans", """{"code": "p", "name": "P", "max_devices": 1, "allowed_regions": "eu"}""", 400, "invalid_request" },
        { "plan: missing regions", Auth.Admin, "POST", "/v1/admin/plans", """{"code": "p", "name": "P", "max_devices": 1}""", 400, "invalid_request" },
        { "subscription: bad status", Auth.Admin, "POST", "/v1/admin/subscriptions", "{\"customer_id\": \"" + Guid.Empty + "\", \"plan_code\": \"basic\", \"status\": \"free\"}", 400, "invalid_request" },
        { "subscription: customer not uuid", Auth.Admin, "POST", "/v1/admin/subscriptions", """{"customer_id": "42", "plan_code": "basic", "status": "active"}""", 400, "invalid_request" },
        { "subscription: unknown plan", Auth.Admin, "POST", "/v1/admin/subscriptions", "{\"customer_id\": \"" + Guid.Empty + "\", \"plan_code\": \"nope\", \"status\": \"active\"}", 404, "plan_not_found" },
        { "subscription: get not uuid", Auth.Admin, "GET", "/v1/admin/subscriptions/abc", null, 400, "invalid_request" },
    };

    [Fact]
    public async Task EveryEndpoint_BadInput_Answers4xxProblemWithContractCode()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();
        var other = (await stack.SeedCustomerAsync()).Id;
        var failures = new List<string>();
        foreach (var row in Cases)
        {
            var (name, auth, method, path, body, status, code) = row;
            string Fill(string s) => s.Replace("{device}", customer.DeviceId.ToString(), StringComparison.Ordinal)
                .Replace("{node}", customer.NodeId.ToString(), StringComparison.Ordinal)
                .Replace("{key}", TestStack.NewKey(), StringComparison.Ordinal);
            using var request = new HttpRequestMessage(new HttpMethod(method), Fill(path));
            switch (auth)
            {
                case Auth.Customer:
                    request.Headers.Add("x-customer-id", customer.Id.ToString());
                    break;
                case Auth.OtherCustomer:
                    request.Headers.Add("x-customer-id", other.ToString());
                    break;
                case Auth.Admin:
                    request.Headers.Add("x-admin-token", TestStack.AdminToken);
                    break;
            }
            if (body is not null)
            {
                request.Content = new StringContent(Fill(body), Encoding.UTF8, "application/json");
            }
            using var response = await stack.Client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var gotCode = TryCode(text);
            if ((int)response.StatusCode != status || gotCode != code
                || response.Content.Headers.ContentType?.MediaType != "application/problem+json")
            {
                failures.Add($"{name}: expected {status} {code}, got {(int)response.StatusCode} {gotCode} ({response.Content.Headers.ContentType}) {text[..Math.Min(200, text.Length)]}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));

        // Nothing stored was lost: the device, the subscription and the node are intact and a session still starts.
        var devices = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/devices"), 200);
        Assert.Equal(customer.DeviceId, devices.GetProperty("items")[0].GetProperty("id").GetGuid());
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions", new { device_id = customer.DeviceId, region = "eu-west" }), 201);
    }

    private sealed class CaseList : List<(string Name, Auth Auth, string Method, string Path, string? Body, int Status, string Code)>
    {
        public void Add(string name, Auth auth, string method, string path, string? body, int status, string code) =>
            Add((name, auth, method, path, body, status, code));
    }

    private static string? TryCode(string text)
    {
        try
        {
            return JsonDocument.Parse(text).RootElement.TryGetProperty("code", out var code) ? code.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

public sealed class InMemoryBadInputTests() : BadInputTests(StoreKind.InMemory);

public sealed class PostgresBadInputTests() : BadInputTests(StoreKind.Postgres);
