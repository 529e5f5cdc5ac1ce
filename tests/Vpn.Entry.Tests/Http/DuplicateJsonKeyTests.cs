using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Vpn.Entry.Http;

namespace Vpn.Entry.Tests.Http;

/// <summary>
/// A request body that names a property twice, at any depth, answers 400 invalid_request on every endpoint that takes a
/// body — the endpoints are read from the app's own route table, so a new one is covered without editing this test.
/// </summary>
public sealed class DuplicateJsonKeyTests : IAsyncLifetime
{
    private TestStack _stack = null!;
    private Customer _customer = null!;

    public async ValueTask InitializeAsync()
    {
        _stack = await TestStack.StartAsync(StoreKind.InMemory);
        _customer = await _stack.SeedCustomerAsync();
    }

    public async ValueTask DisposeAsync() => await _stack.DisposeAsync();

    private sealed record BodyEndpoint(string Method, string Path, IReadOnlyList<string> Properties);

    /// <summary>Every route whose handler binds a JSON body, with its route values filled and its body's JSON property names.</summary>
    private List<BodyEndpoint> BodyEndpoints()
    {
        var json = _stack.EntryServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        var endpoints = new List<BodyEndpoint>();
        foreach (var endpoint in _stack.EntryServices.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>())
        {
            if (endpoint.Metadata.GetMetadata<IAcceptsMetadata>() is not { RequestType: { } requestType })
            {
                continue;
            }
            var path = "/" + string.Join('/', endpoint.RoutePattern.PathSegments.Select(segment => string.Concat(segment.Parts.Select(part => part switch
            {
                Microsoft.AspNetCore.Routing.Patterns.RoutePatternLiteralPart literal => literal.Content,
                _ => Guid.NewGuid().ToString(),
            }))));
            var properties = json.GetTypeInfo(requestType).Properties.Select(p => p.Name).ToList();
            foreach (var method in endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["POST"])
            {
                endpoints.Add(new BodyEndpoint(method, path.TrimEnd('/') is { Length: > 0 } p ? p : "/", properties));
            }
        }
        return endpoints;
    }

    private async Task<(int Status, string? Code, string? Detail, string? MediaType)> SendAsync(string method, string path, string body)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path)
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        // Every credential at once, so no endpoint stops at authentication before it reads the body.
        request.Headers.Add("x-admin-token", TestStack.AdminToken);
        request.Headers.Add("Authorization", "Bearer " + _stack.TokenFor(_customer.Id));
        using var response = await _stack.Client.SendAsync(request, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        string? code = null, detail = null;
        if (text.Length > 0)
        {
            using var document = JsonDocument.Parse(text);
            code = document.RootElement.TryGetProperty("code", out var c) ? c.GetString() : null;
            detail = document.RootElement.TryGetProperty("detail", out var d) ? d.GetString() : null;
        }
        return ((int)response.StatusCode, code, detail, response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public void RouteTable_ListsTheKnownBodyEndpoints_SoTheSweepBelowIsNotEmpty()
    {
        var found = BodyEndpoints().Select(e => $"{e.Method} {e.Path}").ToList();
        foreach (var expected in new[]
        {
            "POST /v1/devices", "POST /v1/sessions", "POST /v1/sessions/reconnect", "POST /v1/admin/nodes", "POST /v1/internal/nodes/health",
            "POST /v1/admin/plans", "POST /v1/admin/subscriptions", "POST /v1/auth/oauth/google/callback",
        })
        {
            Assert.Contains(expected, found);
        }
    }

    [Fact]
    public async Task EveryBodyEndpoint_DuplicateKeyAtAnyDepth_InvalidRequest()
    {
        var failures = new List<string>();
        foreach (var endpoint in BodyEndpoints())
        {
            var first = endpoint.Properties.Count > 0 ? endpoint.Properties[0] : "x";
            var bodies = new List<string>();
            // Each of the body's own properties twice; once spelled in another case (the binder matches names ignoring case).
            bodies.AddRange(endpoint.Properties.Select(p => $$"""{"{{p}}": null, "{{p}}": null}"""));
            bodies.Add($$"""{"{{first}}": null, "{{first.ToUpperInvariant()}}": null}""");
            // Unknown properties (ignored when bound) and nested objects, in objects and in arrays.
            bodies.Add("""{"extra": 1, "extra": 2}""");
            bodies.Add($$$"""{"{{{first}}}": null, "extra": {"k": 1, "k": 2}}""");
            bodies.Add($$$"""{"{{{first}}}": null, "extra": [{"ok": 1}, {"a": {"k": 1, "k": 2}}]}""");
            foreach (var body in bodies)
            {
                var (status, code, detail, mediaType) = await SendAsync(endpoint.Method, endpoint.Path, body);
                if (status != 400 || code != "invalid_request" || detail != StrictJsonBodies.DuplicateDetail || mediaType != "application/problem+json")
                {
                    failures.Add($"{endpoint.Method} {endpoint.Path} {body}: {status} {code} {mediaType} {detail}");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task RegisterDevice_TwoPublicKeys_InvalidRequest_AndNoDeviceStored()
    {
        var (a, b) = (TestStack.NewKey(), TestStack.NewKey());
        var (status, code, _, _) = await SendAsync("POST", "/v1/devices", $$"""{"name": "laptop", "public_key": "{{a}}", "public_key": "{{b}}"}""");
        Assert.Equal((400, "invalid_request"), (status, code));
        var devices = await _stack.SendJsonAsync(TestStack.AsCustomer(_customer.Id, HttpMethod.Get, "/v1/devices"), 200);
        Assert.Equal(1, devices.GetProperty("items").GetArrayLength());
        // The same body without the repetition is accepted: only the duplicate was refused.
        Assert.Equal(201, (await SendAsync("POST", "/v1/devices", $$"""{"name": "laptop", "public_key": "{{b}}"}""")).Status);
    }

    [Fact]
    public async Task StartSession_TwoRegions_InvalidRequest_AndNoSessionStarted()
    {
        var (status, code, _, _) = await SendAsync("POST", "/v1/sessions", $$"""{"device_id": "{{_customer.DeviceId}}", "region": "eu-west", "region": "ap-south"}""");
        Assert.Equal((400, "invalid_request"), (status, code));
        await _stack.SendJsonAsync(TestStack.AsCustomer(_customer.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
    }

    [Theory]
    [InlineData("/v1/admin/subscriptions?status=active&status=canceled")]
    [InlineData("/v1/admin/subscriptions/count?plan_code=basic&plan_code=other")]
    [InlineData("/v1/admin/subscriptions?limit=10&limit=500")]
    [InlineData("/v1/admin/core/status?node_id={node}&node_id={node}")]
    public async Task RepeatedQueryParameter_InvalidRequest_NotFirstOrLastWins(string path)
    {
        // The same differential as a repeated JSON name: the binder joins repeats ("active,canceled"), which no field accepts.
        using var request = _stack.Admin(HttpMethod.Get, path.Replace("{node}", _customer.NodeId.ToString(), StringComparison.Ordinal));
        var problem = await _stack.SendJsonAsync(request, 400);
        Assert.Equal("invalid_request", problem.GetProperty("code").GetString());
    }

    [Fact]
    public void SerializerOptions_RefuseDuplicateProperties()
    {
        var json = _stack.EntryServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        Assert.False(json.AllowDuplicateProperties);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<Vpn.Entry.Devices.RegisterDeviceRequest>("""{"name": "a", "NAME": "b"}""", json));
    }

    [Theory]
    [InlineData("""{"a": 1, "b": {"a": 1}, "c": [{"a": 1}, {"a": 2}]}""", false)]
    [InlineData("""{"a": 1, "a": 1}""", true)]
    [InlineData("""{"a": 1, "A": 1}""", true)]
    [InlineData("""{"a": 1, "\u0061": 1}""", true)]
    [InlineData("""[{"x": {"y": [{"z": 1, "z": 2}]}}]""", true)]
    [InlineData("""{"a": {"b": 1}, "c": {"b": 1}}""", false)]
    [InlineData("""{"a": 1, "b" """, false)]
    [InlineData("not json", false)]
    public void HasDuplicateProperty_Body_FindsRepeatsOnlyWithinOneObject(string json, bool expected) =>
        Assert.Equal(expected, StrictJsonBodies.HasDuplicateProperty(Encoding.UTF8.GetBytes(json)));
}
