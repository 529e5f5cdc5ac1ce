namespace Vpn.EndToEnd;

/// <summary>
/// Entitlements at every moment, through real WireGuard: canceling a subscription ends the active session, removes its
/// peer from the node's device, and the client's tunnel stops carrying traffic.
/// </summary>
public sealed class EntitlementTests(VpnStackFixture stack) : IClassFixture<VpnStackFixture>
{
    [Fact(Timeout = 120_000)]
    public async Task Subscription_canceled_removes_the_peer_and_cuts_the_client_off()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var entry = stack.EntryClient;
        await stack.ReportNodeHealthyAsync(cancellationToken: ct);
        var keys = await WireGuardKeys.GenerateAsync();
        var device = await stack.CreateCustomerWithDeviceAsync(keys, ct);
        var customer = device.CustomerId;
        var session = await stack.ExpectStatusAsync(await stack.StartSessionAsync(device, ct), HttpStatusCode.Created);
        await stack.Lab.ConfigureClientAsync(WgQuickConfig.Parse(session.Text("wireguard_config")).WithPrivateKey(keys.PrivateKey));
        var (ok, body, attempts) = await stack.Lab.ClientCurlUntilSuccessAsync(TimeSpan.FromSeconds(15), ct);
        await stack.CheckAsync(ok && body == VpnLab.NodeInetSideIp, $"client did not get through before the cancellation (body '{body}'):\n{attempts}");

        await stack.ExpectStatusAsync(
            await entry.AdminAsync(HttpMethod.Post, "/v1/admin/subscriptions", new { CustomerId = customer, PlanCode = VpnStackFixture.PlanCode, Status = "canceled" }, ct),
            HttpStatusCode.OK);

        var peers = await stack.NodeWgShowPeersAsync();
        await stack.CheckAsync(!peers.Contains(keys.PublicKey), $"after cancellation the node still has the device peer {keys.PublicKey}.");
        var current = await entry.CustomerAsync(customer, HttpMethod.Get, "/v1/sessions/current", cancellationToken: ct);
        await stack.ExpectStatusAsync(current, HttpStatusCode.NotFound);
        var after = await stack.ClientCurlAsync(TimeSpan.FromSeconds(2));
        await stack.CheckAsync(after.ExitCode != 0, $"curl still succeeded after the cancellation (body '{after.StandardOutput.Trim()}').");
        await stack.ExpectStatusAsync(await stack.StartSessionAsync(device, ct), HttpStatusCode.Forbidden);
    }
}
