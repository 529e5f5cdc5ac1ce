namespace Vpn.Entry.Tests.Sessions;

/// <summary>The session endpoints answer their failures as typed results: OpenAPI lists each, and they read as thrown problems do.</summary>
public sealed class SessionOpenApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("/v1/sessions", "post", "201", new[] { "400", "401", "403", "404", "409", "413", "422", "429", "502", "503" })]
    [InlineData("/v1/sessions/reconnect", "post", "200", new[] { "400", "401", "403", "413", "429", "502", "503" })]
    [InlineData("/v1/sessions/current", "get", "200", new[] { "401", "404", "503" })]
    [InlineData("/v1/sessions/current", "delete", "204", new[] { "401", "404", "503" })]
    public async Task OpenApi_SessionEndpoint_ListsEveryProblemResponse(string path, string method, string success, string[] problems)
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory);

        using var document = JsonDocument.Parse(await stack.Client.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative), Ct));

        var responses = document.RootElement.GetProperty("paths").GetProperty(path).GetProperty(method).GetProperty("responses");
        Assert.Equal([success, .. problems], responses.EnumerateObject().Select(r => r.Name).Order(StringComparer.Ordinal));
        Assert.All(problems, status => Assert.Equal("#/components/schemas/Problem",
            responses.GetProperty(status).GetProperty("content").GetProperty("application/problem+json").GetProperty("schema")
                .GetProperty("$ref").GetString()));
    }

    [Fact]
    public async Task ProblemResult_NoActiveSession_SameHeadersAndShapeAsAThrownProblem()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory);
        var customer = await stack.SeedCustomerAsync();

        // A device key registered twice is still a thrown problem (answered by the exception handler).
        var key = TestStack.NewKey();
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/devices", new { name = "a", public_key = key }), 201);
        using var thrown = await stack.Client.SendAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/devices", new { name = "b", public_key = key }), Ct);
        using var answered = await stack.Client.SendAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/sessions/current"), Ct);

        Assert.Equal(409, (int)thrown.StatusCode);
        Assert.Equal(404, (int)answered.StatusCode);
        Assert.Equal(Headers(thrown), Headers(answered));
        using var problem = JsonDocument.Parse(await answered.Content.ReadAsStringAsync(Ct));
        Assert.Equal(["type", "title", "status", "detail", "code", "trace_id"], problem.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal("https://vpn.invalid/problems/no_active_session", problem.RootElement.GetProperty("type").GetString());
        Assert.Equal("no_active_session", problem.RootElement.GetProperty("code").GetString());
    }

    private static string[] Headers(HttpResponseMessage response) =>
        [.. response.Headers.NonValidated.Concat(response.Content.Headers.NonValidated)
            .Where(h => h.Key is not "Date" and not "Content-Length")
            .Select(h => $"{h.Key}: {string.Join(",", h.Value)}")
            .Order(StringComparer.Ordinal)];
}
