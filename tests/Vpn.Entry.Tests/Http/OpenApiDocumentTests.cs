using System.Reflection;
using System.Text.Json.Nodes;
using Vpn.Entry.Http;
using Vpn.Entry.Http.OpenApi;
using Vpn.Harness;

namespace Vpn.Entry.Tests.Http;

/// <summary>
/// The OpenAPI document app developers generate clients from: the committed docs/openapi/v1.json is what entry serves,
/// every operation has an id, a summary, its security and its problem responses with codes from the contract, the
/// required fields are exactly the contract's, and Redocly's recommended rules (warnings as errors) pass. That no
/// endpoint answers a problem its operation does not declare is checked by every TestStack (ProblemContractCheck).
/// </summary>
public sealed class OpenApiDocumentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string SnapshotPath = Path.Combine(RepositoryPaths.Root, "docs", "openapi", "v1.json");

    [Fact]
    public async Task ServedDocument_IsTheCommittedSnapshot()
    {
        var served = await ServedAsync();

        if (Environment.GetEnvironmentVariable("UPDATE_OPENAPI_SNAPSHOT") == "1")
        {
            await File.WriteAllTextAsync(SnapshotPath, served.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n", Ct);
        }
        var committed = JsonNode.Parse(await File.ReadAllTextAsync(SnapshotPath, Ct));
        Assert.True(JsonNode.DeepEquals(served, committed),
            "docs/openapi/v1.json is not what entry serves: regenerate it with UPDATE_OPENAPI_SNAPSHOT=1 dotnet test --project tests/Vpn.Entry.Tests "
            + "-- --filter-class \"*OpenApiDocumentTests\" and review the diff.");
    }

    [Fact]
    public async Task EveryOperation_IsInTheCatalogue_WithIdSummaryAndSecurity()
    {
        var document = await ServedAsync();

        var operations = Operations(document).ToList();
        Assert.Equal(
            EntryOperations.All.Select(o => $"{o.Method} {o.Route}").Order(StringComparer.Ordinal),
            operations.Select(o => $"{o.Method} {o.Path}").Order(StringComparer.Ordinal));
        Assert.All(operations, o =>
        {
            Assert.False(string.IsNullOrWhiteSpace((string?)o.Operation["operationId"]), $"{o.Method} {o.Path}: operationId");
            Assert.False(string.IsNullOrWhiteSpace((string?)o.Operation["summary"]), $"{o.Method} {o.Path}: summary");
            var schemes = o.Operation["security"]!.AsArray().SelectMany(r => r!.AsObject().Select(p => p.Key)).ToHashSet();
            var expected = o.Path.StartsWith("/v1/admin/", StringComparison.Ordinal) || o.Path.StartsWith("/v1/internal/", StringComparison.Ordinal)
                ? new HashSet<string> { OpenApiContract.AdminScheme }
                : o.Path is "/healthz" or "/readyz" or "/v1/auth/oauth/google/callback" or "/v1/locations"
                    ? []
                    : new HashSet<string> { OpenApiContract.BearerScheme, OpenApiContract.LegacyCustomerScheme };
            Assert.True(expected.SetEquals(schemes), $"{o.Method} {o.Path}: security [{string.Join(", ", schemes)}]");
        });
        Assert.Equal(operations.Count, operations.Select(o => (string?)o.Operation["operationId"]).Distinct().Count());
        var securitySchemes = document["components"]!["securitySchemes"]!.AsObject();
        Assert.Equal("bearer", (string?)securitySchemes[OpenApiContract.BearerScheme]!["scheme"]);
        Assert.Equal("x-admin-token", (string?)securitySchemes[OpenApiContract.AdminScheme]!["name"]);
    }

    [Fact]
    public async Task EveryProblemResponse_NamesContractCodes_AndRetryAfterWhereTheContractPromisesIt()
    {
        var document = await ServedAsync();
        var contractCodes = typeof(ErrorCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => (string)f.GetRawConstantValue()!).ToHashSet(StringComparer.Ordinal);

        foreach (var (method, path, operation) in Operations(document))
        {
            var responses = operation["responses"]!.AsObject();
            if (path is "/healthz" or "/readyz")
            {
                // Process probes: 503 is their own JSON body, and nothing a caller sends is wrong.
                continue;
            }
            if (path != "/v1/locations")
            {
                // The public list takes nothing a caller can get wrong; every other operation has a client error.
                Assert.Contains(responses, r => r.Key.StartsWith('4'));
            }
            foreach (var (status, response) in responses.Where(r => r.Key[0] is '4' or '5'))
            {
                var problem = response!["content"]?["application/problem+json"];
                Assert.True(problem is not null, $"{method} {path} {status}: no problem+json body");
                Assert.Equal("#/components/schemas/Problem", (string?)problem!["schema"]!["$ref"]);
                var codes = Codes(operation, status).ToList();
                Assert.NotEmpty(codes);
                Assert.All(codes, code => Assert.Contains(code, contractCodes));
                if (status is "429" or "502" or "503")
                {
                    Assert.True(response["headers"]?["Retry-After"] is not null, $"{method} {path} {status}: Retry-After");
                }
            }
        }
        var start = Operation(document, "/v1/sessions", "post");
        Assert.Equal(["idempotency_key_in_progress", "session_conflict"], Codes(start, "409"));
        Assert.Contains("server_busy", Codes(start, "503"));
        Assert.Contains("store_unavailable", Codes(start, "503"));
        Assert.Equal(new[] { "missing_token", "invalid_token", "token_expired", "token_revoked", "invalid_session_key" }.Order(StringComparer.Ordinal),
            Codes(Operation(document, "/v1/sessions/reconnect", "post"), "401").Order(StringComparer.Ordinal));
        var header = Assert.Single(start["parameters"]!.AsArray(), p => (string?)p!["name"] == "Idempotency-Key")!;
        Assert.Equal("header", (string?)header["in"]);
        Assert.Equal(255, (int?)header["schema"]!["maxLength"]);
    }

    [Theory]
    [InlineData("StartSessionRequest", new[] { "device_id", "region" })]
    [InlineData("RegisterDeviceRequest", new[] { "name", "public_key" })]
    [InlineData("ReconnectRequest", new[] { "session_key" })]
    [InlineData("OAuthCallbackRequest", new[] { "code", "redirect_uri" })]
    [InlineData("SetSubscriptionRequest", new[] { "customer_id", "plan_code", "status" })]
    [InlineData("DrainNodeRequest", new string[0])]
    [InlineData("SessionView", new[] { "session_id", "state", "created_at", "device_id", "node", "interface", "peer", "wireguard_config" })]
    [InlineData("Problem", new[] { "type", "title", "status", "detail", "code" })]
    public async Task RequiredFields_AreExactlyTheContracts(string schema, string[] required)
    {
        var document = await ServedAsync();

        var listed = document["components"]!["schemas"]![schema]!["required"]?.AsArray().Select(n => (string)n!) ?? [];
        Assert.Equal(required.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Snapshot_PassesRedoclyLint_AndTheLintCatchesAMissingOperationId()
    {
        var lintDirectory = Path.Combine(RepositoryPaths.Root, "tests", "openapi-lint");
        var redocly = Path.Combine(lintDirectory, "node_modules", "@redocly", "cli", "bin", "cli.js");
        Prerequisites.RequireExecutable("node");
        Prerequisites.Require(File.Exists(redocly), "Redocly CLI (npm ci --prefix tests/openapi-lint)");

        var clean = await LintAsync(redocly, lintDirectory, SnapshotPath);
        Assert.True(clean.ExitCode == 0, $"redocly lint failed:\n{clean.StandardOutput}\n{clean.StandardError}");

        // The same document with one operation's id removed must fail: the lint is not a formality.
        var broken = JsonNode.Parse(await File.ReadAllTextAsync(SnapshotPath, Ct))!;
        broken["paths"]!["/v1/sessions"]!["post"]!.AsObject().Remove("operationId");
        var brokenPath = Path.Combine(Path.GetTempPath(), $"openapi-broken-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(brokenPath, broken.ToJsonString(), Ct);
        try
        {
            var failed = await LintAsync(redocly, lintDirectory, brokenPath);
            Assert.NotEqual(0, failed.ExitCode);
            Assert.Contains("operation-operationId", failed.StandardOutput + failed.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(brokenPath);
        }
    }

    private static Task<ProcessResult> LintAsync(string redocly, string lintDirectory, string document) =>
        ProcessRunner.RunAsync("node", [redocly, "lint", document, "--config", Path.Combine(lintDirectory, "redocly.yaml")],
            timeout: TimeSpan.FromMinutes(2), environment: new Dictionary<string, string> { ["REDOCLY_TELEMETRY"] = "off", ["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true" });

    private static async Task<JsonNode> ServedAsync()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory);
        return JsonNode.Parse(await stack.Client.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative), Ct))!;
    }

    private static IEnumerable<(string Method, string Path, JsonObject Operation)> Operations(JsonNode document) =>
        document["paths"]!.AsObject().SelectMany(path => path.Value!.AsObject()
            .Select(op => (op.Key.ToUpperInvariant(), path.Key, op.Value!.AsObject())));

    private static JsonObject Operation(JsonNode document, string path, string method) => document["paths"]![path]![method]!.AsObject();

    private static IEnumerable<string> Codes(JsonObject operation, string status) =>
        operation["responses"]![status]![OpenApiContract.ProblemCodesExtension]!.AsArray().Select(c => (string)c!);
}
