using Microsoft.AspNetCore.Routing;

namespace Vpn.Entry.Tests.Auth;

/// <summary>Every admin and internal endpoint — found from the routing table, so a new one cannot be forgotten.</summary>
public sealed class AdminAuthTests
{
    [Fact]
    public async Task EveryAdminEndpoint_401WithoutAdminToken_AndWithCustomerCredentials()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory);
        var customer = Guid.NewGuid();
        var bearer = stack.TokenFor(customer);
        var endpoints = stack.EntryServices.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } path && (path.StartsWith("/v1/admin", StringComparison.Ordinal) || path.StartsWith("/v1/internal", StringComparison.Ordinal)))
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (Method: m, Path: Concrete(e.RoutePattern.RawText!))))
            .ToList();
        Assert.True(endpoints.Count >= 10, $"only {endpoints.Count} admin endpoints found");
        (string Header, string Value)[] credentials =
        [
            ("", ""), ("x-admin-token", "wrong"), ("x-admin-token", ""), ("x-admin-token", TestStack.AdminToken + "x"),
            ("x-customer-id", customer.ToString()), ("Authorization", "Bearer " + bearer), ("x-admin-token", bearer),
        ];
        foreach (var (method, path) in endpoints)
        {
            foreach (var (header, value) in credentials)
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (method is "POST" or "PUT" or "PATCH")
                {
                    request.Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json");
                }
                if (header.Length > 0)
                {
                    request.Headers.TryAddWithoutValidation(header, value);
                }
                using var response = await stack.Client.SendAsync(request, TestContext.Current.CancellationToken);
                var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
                Assert.True((int)response.StatusCode == 401, $"{method} {path} with '{header}': {(int)response.StatusCode} {body}");
                Assert.Contains("\"code\":\"unauthorized\"", body, StringComparison.Ordinal);
            }
        }
    }

    private static string Concrete(string pattern) =>
        System.Text.RegularExpressions.Regex.Replace(pattern, "\\{[^}]+\\}", Guid.NewGuid().ToString());
}
