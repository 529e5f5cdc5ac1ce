using Vpn.Cli;
using Vpn.Cli.Client;

namespace Vpn.EndToEnd.Vpnctl;

// The reference client: `vpnctl client …` in-process against the real entry, core and OpenID provider, and a real
// tunnel brought up by wg-quick from the very file it wrote.
public sealed partial class VpnctlTests
{
    [Fact(Timeout = 300_000)]
    public async Task Client_signs_in_with_pkce_connects_and_its_wg_quick_file_carries_traffic_then_reconnects_and_explains_409_and_503()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var client = stack.Consumer.B;
        var stateDir = Path.Combine(stack.NodeLab.WorkDirectory, "vpnctl-state");
        string[] Client(params string[] args) => ["client", .. args, "--state-dir", stateDir];

        // Sign-in: a browser of the test's follows the provider's redirects (its scripted login) back to vpnctl's loopback listener.
        var login = await Expect(await stack.RunWithAsync(null, BrowseAsync, Client("login", "--issuer", stack.Provider.Issuer,
            "--client-id", Vpn.TestSupport.Oidc.OidcProvider.NativeClientId, "--json")), ExitCodes.Ok);
        var customer = login.Json["customer_id"]!.GetValue<string>();
        var statePath = Path.Combine(stateDir, "client.json");
        await stack.CheckAsync(File.GetUnixFileMode(statePath) == (UnixFileMode.UserRead | UnixFileMode.UserWrite) && login.Json["new_customer"]!.GetValue<bool>(),
            $"state file 0600, a new customer: {File.GetUnixFileMode(statePath)}\n{login.Describe()}");

        // Not entitled yet: the start's 403 explained; then an operator gives the customer the plan.
        await ExpectError(await stack.RunAsync(Client("connect", "--region", VpnStackFixture.Region, "--out", client.ConfigPath)), ExitCodes.Refused,
            "error: 403 subscription_inactive: ");
        await Expect(await stack.RunAsync("subscriptions", "set", customer, "--plan", VpnStackFixture.PlanCode), ExitCodes.Ok);

        var connect = await Expect(await stack.RunAsync(Client("connect", "--region", VpnStackFixture.Region, "--out", client.ConfigPath)), ExitCodes.Ok,
            "registered this device as ", $"connected: session ", $"on {VpnStackFixture.NodeName} ({VpnStackFixture.Region}, {stack.Consumer.NodeEndpoint})",
            $"wrote {client.ConfigPath} (mode 0600", "█", "▀", "▄", "scan it with the WireGuard app");
        Capture("cli-qr.txt", connect);

        // The file: created 0600, the placeholder replaced by this device's private key, whose public key (by the real wg) is the registered one.
        var state = JsonNode.Parse(File.ReadAllText(statePath))!;
        var privateKey = state["device"]!["private_key"]!.GetValue<string>();
        var publicKey = state["device"]!["public_key"]!.GetValue<string>();
        var wgPublic = (await ProcessRunner.RunAsync("wg", ["pubkey"], privateKey + "\n")).EnsureSuccess("wg pubkey").StandardOutput.Trim();
        var text = File.ReadAllText(client.ConfigPath);
        await stack.CheckAsync(File.GetUnixFileMode(client.ConfigPath) == (UnixFileMode.UserRead | UnixFileMode.UserWrite)
            && text.Contains("PrivateKey = " + privateKey + "\n", StringComparison.Ordinal) && !text.Contains(WgQuickConfig.PrivateKeyPlaceholder, StringComparison.Ordinal)
            && wgPublic == publicKey && !connect.Out.Contains(privateKey, StringComparison.Ordinal),
            $"wg-quick file mode {File.GetUnixFileMode(client.ConfigPath)}, key filled in, wg pubkey {wgPublic} = registered {publicKey}, private key never printed as text");
        var devices = await stack.EntryClient.CustomerAsync(Guid.Parse(customer), HttpMethod.Get, "/v1/devices", cancellationToken: ct);
        await stack.CheckAsync(devices.Body.Contains(publicKey, StringComparison.Ordinal) && !devices.Body.Contains(privateKey, StringComparison.Ordinal), devices.Describe());

        var sessionId = state["session"]!["id"]!.GetValue<string>();
        var firstKey = state["session"]!["key"]!.GetValue<string>();
        try
        {
            await client.UpFromFileAsync();
            await ExpectThroughTunnelAsync(client, "after connect", ct);

            var reconnect = await Expect(await stack.RunAsync(Client("reconnect", "--no-qr")), ExitCodes.Ok, $"reconnected: session {sessionId}", $"wrote {client.ConfigPath}");
            var after = JsonNode.Parse(File.ReadAllText(statePath))!["session"]!;
            await stack.CheckAsync(after["id"]!.GetValue<string>() == sessionId && after["key"]!.GetValue<string>() != firstKey
                && File.GetUnixFileMode(client.ConfigPath) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), $"same session, rotated key, file still 0600\n{reconnect.Describe()}");
            await ExpectThroughTunnelAsync(client, "after reconnect", ct);
            // The operator's view meanwhile: the node carries this session's peer (core's own count, read live).
            Capture("cli-nodes-list.txt", await Expect(await stack.RunAsync("nodes", "list"), ExitCodes.Ok, VpnStackFixture.NodeName, "healthy, synced, 1 peer"));

            // One session per account: a second start without --replace is a 409, explained.
            await ExpectError(await stack.RunAsync(Client("connect", "--region", VpnStackFixture.Region, "--out", client.ConfigPath)), ExitCodes.Refused,
                $"error: 409 session_conflict: Another session is active for this customer.\n  You already have a session ({sessionId})");
            // No server matches: the 503's rejected counts in words (nothing is replaced: selection comes first).
            var none = await ExpectError(await stack.RunAsync(Client("connect", "--region", VpnStackFixture.Region, "--country", "FR", "--replace", "--no-qr",
                "--out", Path.Combine(stack.NodeLab.WorkDirectory, "other.conf"))), ExitCodes.Unavailable,
                "error: 503 no_nodes_available_in_region: ");
            await stack.CheckAsync(none.Err.Contains("No server can take a session in that region right now: 1 server in the region but not matching your country/city/pool choice.", StringComparison.Ordinal)
                && none.Err.Contains("Entry suggests retrying in ", StringComparison.Ordinal), none.Describe());
            await ExpectThroughTunnelAsync(client, "after the refused starts", ct);

            var status = await Expect(await stack.RunAsync(Client("status")), ExitCodes.Ok, $"customer:      {customer}", $"session:       {sessionId} active on {VpnStackFixture.NodeName}");
            await stack.CheckAsync(!status.Out.Contains(privateKey, StringComparison.Ordinal), status.Describe());
            // Without --url or $VPNCTL_URL the client goes to the entry it signed in at (stored in its state).
            await Expect(await stack.RunWithAsync(new Dictionary<string, string?> { ["VPNCTL_URL"] = null }, null, Client("status")), ExitCodes.Ok, $"customer:      {customer}");
        }
        finally
        {
            await client.DownFromFileAsync();
        }

        var withSession = await File.ReadAllTextAsync(statePath, ct);
        // Following the session's events while it is ended: the stream (resumed from the session the client holds, so
        // it does not matter whether it opened before the end) tells "ended" with the reason, and the command ends.
        // (Its own copy of the state: the disconnect rewrites the client's file meanwhile.)
        var eventsDir = Directory.CreateDirectory(stateDir + "-events").FullName;
        File.Copy(statePath, Path.Combine(eventsDir, Path.GetFileName(statePath)), overwrite: true);
        File.SetUnixFileMode(Path.Combine(eventsDir, Path.GetFileName(statePath)), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var events = stack.RunAsync("client", "events", "--state-dir", eventsDir);
        await Expect(await stack.RunAsync(Client("disconnect")), ExitCodes.Ok, "disconnected");
        var followed = await events.WaitAsync(TimeSpan.FromSeconds(60), ct);
        await Expect(followed, ExitCodes.Ok, "ended: customer_request");
        await ExpectError(await stack.RunAsync(Client("reconnect")), ExitCodes.Refused, "error: no session to reconnect: run 'vpnctl client connect'");
        // A copy of the state from before (an app that kept the ended session's key): entry's 401, explained, and the key dropped.
        File.WriteAllText(statePath, withSession);
        await ExpectError(await stack.RunAsync(Client("reconnect")), ExitCodes.Unauthorized,
            "error: 401 invalid_session_key: The session key is not valid.\n  The session key is no longer valid (the session ended");
        await ExpectError(await stack.RunAsync(Client("reconnect")), ExitCodes.Refused, "error: no session to reconnect");
        await Expect(await stack.RunAsync(Client("logout")), ExitCodes.Ok, "logged out");
        await ExpectError(await stack.RunAsync(Client("status")), ExitCodes.Unauthorized, "error: not signed in: run 'vpnctl client login'");
    }

    /// <summary>The web server, by name (the node's resolver, from the file's DNS line), sees the node's uplink address: NATed through the tunnel.</summary>
    private async Task ExpectThroughTunnelAsync(WgQuickClient client, string when, CancellationToken ct)
    {
        var last = "";
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var fetch = await client.CurlAsync(4, ConsumerLab.WebUrl, TimeSpan.FromSeconds(5));
            last = $"exit {fetch.ExitCode}, body '{fetch.StandardOutput.Trim()}', {fetch.StandardError.Trim()}";
            if (fetch.ExitCode == 0)
            {
                await stack.CheckAsync(fetch.StandardOutput.Trim() == ConsumerLab.NodeUplinkIp,
                    $"{when}: {ConsumerLab.WebUrl} must see the node's uplink address {ConsumerLab.NodeUplinkIp}, not the client's ({client.HomeIp}): {last}");
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                await stack.FailAsync($"{when}: {client} cannot fetch {ConsumerLab.WebUrl} through the tunnel vpnctl's file brought up: {last}\n{client.WgQuickOutput}");
            }
            await Task.Delay(500, ct);
        }
    }

    /// <summary>
    /// The browser: the provider's authorization URL, its redirects through the scripted login (cookies kept), and finally
    /// the redirect to vpnctl's loopback callback, which is requested as a browser would.
    /// </summary>
    private async Task BrowseAsync(Uri url, CancellationToken cancellationToken)
    {
        using var browser = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() })
        {
            Timeout = TimeSpan.FromSeconds(15),
        };
        var issuer = new Uri(stack.Provider.Issuer);
        var location = url;
        for (var hop = 0; hop < 10; hop++)
        {
            using var response = await browser.GetAsync(location, cancellationToken);
            if (location.Port != issuer.Port)
            {
                // vpnctl's listener answered the callback.
                await stack.CheckAsync(response.StatusCode == HttpStatusCode.OK, $"vpnctl's callback answered {(int)response.StatusCode}");
                return;
            }
            if (response.Headers.Location is not { } next)
            {
                await stack.FailAsync($"the provider's login stopped at {location} with {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
                return;
            }
            location = next.IsAbsoluteUri ? next : new Uri(location, next);
        }
        await stack.FailAsync($"the login did not reach vpnctl's callback within 10 redirects (last {location})");
    }
}
