using Vpn.TestSupport.Oidc;

namespace Vpn.EndToEnd;

/// <summary>One entry process of the pair.</summary>
internal sealed record EntryReplica(string Name, Uri BaseAddress, BackgroundProcess Process, EntryClient Client);

/// <summary>
/// A private PostgreSQL (migrated by <c>Vpn.Entry.dll migrate</c>), the OpenID provider, and entry A and B as real
/// processes (under coreutils <c>timeout</c>, as in <see cref="VpnStackFixture"/>) sharing the database, the admin token
/// and the JWT signing key. Failures carry both entries' output, the provider's and PostgreSQL's log.
/// </summary>
internal sealed class IdentityStack : IAsyncDisposable
{
    public const string ProblemJson = "application/problem+json";

    private const int OutputTail = 8_000;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60); // a cap for a loaded machine, not a wait
    private static readonly TimeSpan AnswerDeadline = TimeSpan.FromSeconds(5);

    private readonly StringBuilder _log = new();
    private readonly List<EntryReplica> _replicas = [];

    private IdentityStack()
    {
    }

    public PostgresServer Postgres { get; private set; } = null!;

    public OidcProvider Provider { get; private set; } = null!;

    public string AdminToken { get; } = RandomSecret();

    /// <summary>k1:&lt;secret&gt;, the same on both replicas: a token signed by one verifies on the other.</summary>
    public string SigningKeys { get; } = "k1:" + RandomSecret();

    public EntryReplica A => _replicas[0];

    public EntryReplica B => _replicas[1];

    public IReadOnlyList<EntryReplica> Replicas => _replicas;

    public static async Task<IdentityStack> StartAsync(CancellationToken cancellationToken)
    {
        Prerequisites.RequireExecutable("dotnet");
        Prerequisites.RequireExecutable("timeout");
        Prerequisites.Require(File.Exists(RepoLayout.EntryDll), $"entry built at {RepoLayout.EntryDll}");
        var stack = new IdentityStack();
        try
        {
            await stack.SetUpAsync(cancellationToken);
            return stack;
        }
        catch (Exception e) when (!e.Message.StartsWith(VpnStackFixture.SkipToken, StringComparison.Ordinal))
        {
            var diagnostics = stack.Diagnostics();
            await stack.DisposeAsync();
            throw new Xunit.Sdk.XunitException($"Identity stack setup failed: {e}\n\n{diagnostics}", e);
        }
        catch
        {
            // A missing prerequisite (skip locally, fail under CI, as Prerequisites decided): pass it on unchanged.
            await stack.DisposeAsync();
            throw;
        }
    }

    private async Task SetUpAsync(CancellationToken cancellationToken)
    {
        // Private, not the shared server: the fail-closed test stops and starts it.
        Postgres = await PostgresServer.StartNewAsync();
        Step($"postgres: {Postgres}");
        var databaseUrl = PostgresServer.ToUrl(await Postgres.CreateDatabaseAsync("identity"));

        var migrate = await ProcessRunner.RunAsync("dotnet", [RepoLayout.EntryDll, "migrate"], null, TimeSpan.FromSeconds(60),
            new Dictionary<string, string> { ["DATABASE_URL"] = databaseUrl, ["APP_ENV"] = "development", ["ADMIN_API_TOKEN"] = AdminToken });
        Step($"migrate exit {migrate.ExitCode}\n{Tail(migrate.StandardOutput)}\n{Tail(migrate.StandardError)}");
        migrate.EnsureSuccess("Vpn.Entry.dll migrate");

        Provider = await OidcProvider.StartAsync(cancellationToken: cancellationToken);
        Step($"OpenID provider: {Provider.Issuer}");

        foreach (var name in new[] { "A", "B" })
        {
            var baseAddress = new Uri($"http://127.0.0.1:{VpnStackFixture.FreeLoopbackPort()}/");
            var environment = new Dictionary<string, string?>
            {
                ["ASPNETCORE_URLS"] = baseAddress.ToString().TrimEnd('/'),
                ["DATABASE_URL"] = databaseUrl,
                ["ADMIN_API_TOKEN"] = AdminToken,
                ["APP_ENV"] = "development",
                // Migrated once above; the replicas only serve.
                ["APP_MIGRATE_ON_START"] = "false",
                ["APP_JWT_SIGNING_KEYS"] = SigningKeys,
                // Bearer tokens only: the development default would let x-customer-id stand in for a token.
                ["APP_ALLOW_LEGACY_CUSTOMER_HEADER"] = "false",
                ["GOOGLE_ISSUER"] = Provider.Issuer,
                ["GOOGLE_CLIENT_ID"] = Provider.ClientId,
                ["GOOGLE_CLIENT_SECRET"] = Provider.ClientSecret,
                ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            };
            var process = VpnStackFixture.StartCapped(null, RepoLayout.EntryDll, environment);
            _replicas.Add(new EntryReplica(name, baseAddress, process, new EntryClient(baseAddress, AdminToken)));
            Step($"entry {name} started (pid {process.Id}) on {baseAddress}");
        }
        await Task.WhenAll(_replicas.Select(r => WaitReadyAsync(r, cancellationToken)));
    }

    private async Task WaitReadyAsync(EntryReplica replica, CancellationToken cancellationToken)
    {
        await VpnStackFixture.WaitForEntryReadyAsync(replica.Process, replica.BaseAddress, ReadyTimeout, $"entry {replica.Name}", cancellationToken);
        Step($"entry {replica.Name} ready");
    }

    /// <summary>A real authorization code (PKCE and nonce, as the app does) for <paramref name="subject"/>, redeemed at <paramref name="replica"/>.</summary>
    public async Task<EntryResponse> SignInAsync(EntryReplica replica, string subject, CancellationToken cancellationToken)
    {
        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var code = await Provider.AuthorizeAsync(subject, nonce, pkce: true, cancellationToken: cancellationToken);
        var response = await replica.Client.SendAsync(HttpMethod.Post, "/v1/auth/oauth/google/callback",
            new { code.Code, code.RedirectUri, code.CodeVerifier, code.Nonce }, cancellationToken: cancellationToken);
        Step($"sign-in of {subject} on {replica.Name}: {(int)response.Status}");
        return response;
    }

    /// <summary>Signs a subject of its own in on <paramref name="replica"/> (a new customer) and expects 200.</summary>
    public async Task<EntryResponse> SignInNewSubjectAsync(EntryReplica replica, CancellationToken cancellationToken)
    {
        var answer = await SignInAsync(replica, "e2e-" + Guid.NewGuid().ToString("N"), cancellationToken);
        ExpectStatus(answer, HttpStatusCode.OK);
        return answer;
    }

    public Task<EntryResponse> MeAsync(EntryReplica replica, string token, CancellationToken cancellationToken) =>
        SendBearerAsync(replica, HttpMethod.Get, "/v1/me", token, cancellationToken);

    public Task<EntryResponse> SendBearerAsync(EntryReplica replica, HttpMethod method, string path, string token, CancellationToken cancellationToken) =>
        replica.Client.SendAsync(method, path, headers: new Dictionary<string, string> { ["Authorization"] = "Bearer " + token }, cancellationToken: cancellationToken);

    /// <summary>GET /v1/me that must be answered at all within a few seconds: failing closed means answering 503, not hanging.</summary>
    public async Task<EntryResponse> AnswerWithinAsync(EntryReplica replica, string token, string what, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(AnswerDeadline);
        var started = Stopwatch.GetTimestamp();
        try
        {
            return await MeAsync(replica, token, deadline.Token);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw Failure($"{what}: no answer after {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms ({e.GetType().Name}: {e.Message})");
        }
    }

    public void ExpectStatus(EntryResponse response, HttpStatusCode expected) =>
        Check(response.Status == expected, $"expected {(int)expected} {expected}: {response.Describe()}");

    /// <summary>The status and problem+json <c>code</c> the contract names.</summary>
    public void ExpectProblem(EntryResponse response, HttpStatusCode status, string code, string what) =>
        Check(response.Status == status && response.ContentType == ProblemJson && ProblemCode(response) == code,
            $"{what}: expected {(int)status} {ProblemJson} with code {code}: {response.Describe()}");

    public void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw Failure(message);
        }
    }

    /// <summary>The problem+json <c>code</c>, or a placeholder saying why there is none (for logs and comparisons).</summary>
    public static string ProblemCode(EntryResponse response)
    {
        try
        {
            return response.Json is JsonObject json && json["code"] is JsonValue code && code.TryGetValue<string>(out var text) ? text : "(no code)";
        }
        catch (InvalidOperationException)
        {
            return "(not JSON)";
        }
    }

    public void Step(string line)
    {
        lock (_log)
        {
            _log.AppendLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}");
        }
    }

    private Xunit.Sdk.XunitException Failure(string message) => new($"{message}\n\n{Diagnostics()}");

    public string Diagnostics()
    {
        var sb = new StringBuilder();
        foreach (var replica in _replicas)
        {
            sb.AppendLine($"=== entry {replica.Name} output ({(replica.Process.HasExited ? "exited" : "running")}) ===").AppendLine(Tail(replica.Process.Output));
        }
        if (Provider is not null)
        {
            sb.AppendLine("=== OpenID provider output ===").AppendLine(Tail(Provider.Output));
        }
        if (Postgres is not null)
        {
            sb.AppendLine("=== postgres log ===").AppendLine(Tail(Postgres.ReadLog()));
        }
        lock (_log)
        {
            sb.AppendLine("=== stack log ===").Append(_log);
        }
        return sb.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in _replicas)
        {
            replica.Client.Dispose();
            await replica.Process.DisposeAsync(); // kills timeout and the dotnet process under it
        }
        if (Provider is not null)
        {
            await Provider.DisposeAsync();
        }
        if (Postgres is not null)
        {
            await Postgres.DisposeAsync(); // private server: stopped and its data directory removed
        }
    }

    private static string RandomSecret() => Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant(); // 48 chars

    private static string Tail(string text) => text.Length <= OutputTail ? text : "…" + text[^OutputTail..];
}
