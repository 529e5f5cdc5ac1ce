using Vpn.Cli.Output;

namespace Vpn.Cli.Client;

/// <summary>
/// vpnctl client login | connect | reconnect | status | events | disconnect | logout: the reference client for app developers,
/// the customer API as an app uses it (docs/api-v1.md), keeping its state in &lt;state-dir&gt;/client.json (0600).
/// </summary>
public static partial class ClientCommands
{
    public static Command Create(GlobalOptions options, CliContext context)
    {
        var stateDir = new Option<DirectoryInfo?>("--state-dir")
        {
            Description = "where the client keeps its sign-in, device key and session (default: $VPNCTL_STATE_DIR, else ~/.config/vpnctl)",
            Recursive = true,
        };
        string StateDir(Invocation run) => run.Get(stateDir)?.FullName ?? run.Context.Environment("VPNCTL_STATE_DIR")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config", "vpnctl");

        var client = new Command("client", "the reference client: sign in (authorization code + PKCE), connect, reconnect, status, logout");
        client.Options.Add(stateDir);
        client.With(CreateLogin(options, context, StateDir), CreateConnect(options, context, StateDir), CreateReconnect(options, context, StateDir),
            CreateStatus(options, context, StateDir), CreateDisconnect(options, context, StateDir), CreateLogout(options, context, StateDir),
            CreateLocations(options, context), CreateEvents(options, context, StateDir));
        return client;
    }

    private static Command CreateLogin(GlobalOptions options, CliContext context, Func<Invocation, string> stateDir)
    {
        var issuer = new Option<string?>("--issuer") { Description = "the OpenID provider (default: $VPNCTL_OIDC_ISSUER, else https://accounts.google.com)" };
        var clientId = new Option<string?>("--client-id") { Description = "the app's OAuth client id, the one entry redeems codes for (default: $VPNCTL_OIDC_CLIENT_ID)" };
        var port = new Option<int>("--port") { Description = "loopback port for the redirect (0: any free port)", DefaultValueFactory = _ => 0 };
        var wait = new Option<int>("--login-timeout") { Description = "seconds to wait for the browser to come back", DefaultValueFactory = _ => 300 };
        return new Command("login", "sign in in a browser (authorization code + PKCE on a loopback redirect); entry redeems the code")
            .With(issuer, clientId, port, wait).Handle(options, context, async run =>
            {
                var issuerText = run.Get(issuer) ?? run.Context.Environment("VPNCTL_OIDC_ISSUER") ?? "https://accounts.google.com";
                var id = run.Get(clientId) ?? run.Context.Environment("VPNCTL_OIDC_CLIENT_ID")
                    ?? throw new CliException(ExitCodes.Usage, "no OAuth client id: pass --client-id or set VPNCTL_OIDC_CLIENT_ID");
                if (!Uri.TryCreate(issuerText, UriKind.Absolute, out var issuerUri))
                {
                    throw new CliException(ExitCodes.Usage, $"--issuer must be an absolute URL, got '{issuerText}'");
                }
                using var http = run.Context.HttpHandler is { } handler ? new HttpClient(handler, disposeHandler: false) : new HttpClient();
                http.Timeout = run.Timeout;
                var browser = run.Context.OpenBrowser ?? ((url, _) =>
                {
                    run.Context.Error.WriteLine($"Open this address in a browser on this machine to sign in:\n\n  {url}\n");
                    return Task.CompletedTask;
                });
                var code = await LoopbackSignIn.AuthorizeAsync(http, issuerUri, id, run.Get(port), browser,
                    TimeSpan.FromSeconds(Math.Max(1, run.Get(wait))), run.CancellationToken);

                using var entry = run.Anonymous();
                var answer = (await entry.PostAsync("/v1/auth/oauth/google/callback", new JsonObject
                {
                    ["code"] = code.Code,
                    ["redirect_uri"] = code.RedirectUri,
                    ["code_verifier"] = code.CodeVerifier,
                    ["nonce"] = code.Nonce,
                }, run.CancellationToken)).EnsureObject();
                var directory = stateDir(run);
                var state = ClientState.Load(directory);
                var customer = answer.Str("customer_id");
                if (state.CustomerId != customer)
                {
                    // Another account: the device and session belong to the previous one.
                    state = new ClientState();
                }
                state.EntryUrl = run.EntryUrl.ToString();
                state.CustomerId = customer;
                state.AccessToken = answer.Str("access_token");
                state.AccessTokenExpiresAt = DateTimeOffset.UtcNow.AddSeconds(answer.Num("expires_in") ?? 3600);
                state.Save(directory);
                run.Print(new JsonObject { ["customer_id"] = customer, ["new_customer"] = answer.Bool("new_customer"), ["expires_at"] = state.AccessTokenExpiresAt },
                    w => w.WriteLine($"signed in as customer {customer}{(answer.Bool("new_customer") == true ? " (new account)" : "")}; the sign-in lasts until {state.AccessTokenExpiresAt:u}"));
                return ExitCodes.Ok;
            });
    }

    private static Command CreateStatus(GlobalOptions options, CliContext context, Func<Invocation, string> stateDir) =>
        new Command("status", "the signed-in account, its subscription and the active session").Handle(options, context, async run =>
        {
            var state = ClientState.Load(stateDir(run));
            using var entry = SignedIn(run, state);
            var me = (await entry.GetAsync("/v1/me", run.CancellationToken)).EnsureObject();
            var current = await entry.GetAsync("/v1/sessions/current", run.CancellationToken);
            var session = current.Status == HttpStatusCode.NotFound ? null : current.EnsureObject();
            run.Print(new JsonObject { ["me"] = me.DeepClone(), ["session"] = session?.DeepClone(), ["device_id"] = state.Device?.Id },
                w =>
                {
                    var subscription = me["subscription"];
                    w.WriteLine($"customer:      {me.Str("customer_id")}");
                    w.WriteLine($"subscription:  {(subscription is null ? "none" : $"{subscription.Str("plan_code")}, {subscription.Str("status")}, regions {Admin.PlanCommands.Regions(subscription)}")}");
                    w.WriteLine($"data:          {(me["usage"] is { } usage ? Admin.Usage.Describe(usage) : "not reported")}");
                    w.WriteLine($"device:        {(state.Device is null ? "none registered yet" : $"{state.Device.Name} ({state.Device.Id}), public key {state.Device.PublicKey}")}");
                    w.WriteLine($"session:       {(session is null ? "none active" : $"{session.Str("session_id")} {session.Str("state")} on {session["node"].Str("name")} ({session["node"].Str("endpoint")}), {string.Join(", ", session["interface"].Items("addresses").Select(a => a?.GetValue<string>()))}")}");
                });
            return ExitCodes.Ok;
        });

    private static Command CreateDisconnect(GlobalOptions options, CliContext context, Func<Invocation, string> stateDir) =>
        new Command("disconnect", "end the active session (entry removes the peer from its server)").Handle(options, context, async run =>
        {
            var directory = stateDir(run);
            var state = ClientState.Load(directory);
            using var entry = SignedIn(run, state);
            var answer = await entry.SendAsync(HttpMethod.Delete, "/v1/sessions/current", null, null, run.CancellationToken);
            if (!answer.IsSuccess)
            {
                throw Explained(ApiProblemException.From(answer.Status, answer.ContentType, answer.Body));
            }
            state.Session = null;
            state.Save(directory);
            run.Print(new JsonObject { ["disconnected"] = true }, w => w.WriteLine("disconnected: the session is ended"));
            return ExitCodes.Ok;
        });

    private static Command CreateLogout(GlobalOptions options, CliContext context, Func<Invocation, string> stateDir)
    {
        var forget = new Option<bool>("--forget") { Description = "also delete the state file: the device key and session key are gone from this machine" };
        return new Command("logout", "revoke this sign-in's access token at entry").With(forget).Handle(options, context, async run =>
        {
            var directory = stateDir(run);
            var state = ClientState.Load(directory);
            if (state.AccessToken is not null)
            {
                using var entry = run.Anonymous(state.EntryUrl);
                entry.BearerToken = state.AccessToken;
                var answer = await entry.PostAsync("/v1/auth/logout", null, run.CancellationToken);
                // An expired or already revoked token is as logged out as it gets.
                if (!answer.IsSuccess && answer.Status != HttpStatusCode.Unauthorized)
                {
                    throw ApiProblemException.From(answer.Status, answer.ContentType, answer.Body);
                }
            }
            state.AccessToken = null;
            state.AccessTokenExpiresAt = null;
            if (run.Get(forget))
            {
                File.Delete(ClientState.PathIn(directory));
            }
            else
            {
                state.Save(directory);
            }
            run.Print(new JsonObject { ["logged_out"] = true, ["forgotten"] = run.Get(forget) },
                w => w.WriteLine(run.Get(forget) ? "logged out; the state file is deleted" : "logged out (the device key stays for the next sign-in; --forget deletes it)"));
            return ExitCodes.Ok;
        });
    }

    /// <summary>A customer client with the stored access token; not signed in, or expired, is <see cref="ExitCodes.Unauthorized"/>.</summary>
    internal static EntryHttp SignedIn(Invocation run, ClientState state)
    {
        if (state.AccessToken is null)
        {
            throw new CliException(ExitCodes.Unauthorized, "not signed in: run 'vpnctl client login'");
        }
        if (state.AccessTokenExpiresAt is { } expires && expires <= DateTimeOffset.UtcNow)
        {
            throw new CliException(ExitCodes.Unauthorized, $"the sign-in expired at {expires:u}: run 'vpnctl client login'");
        }
        // The entry the sign-in was made at, unless --url or $VPNCTL_URL says otherwise: its token is only good there.
        var entry = run.Anonymous(state.EntryUrl);
        entry.BearerToken = state.AccessToken;
        return entry;
    }

    /// <summary>The problem with its plain-words explanation appended (same status and exit code).</summary>
    internal static ApiProblemException Explained(ApiProblemException problem) =>
        new(problem.Status, problem.Code, $"{problem.Detail}\n  {SessionExplainer.Explain(problem)}", problem.Body);
}
