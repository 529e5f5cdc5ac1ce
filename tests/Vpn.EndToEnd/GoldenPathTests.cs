using System.Text.Json;

namespace Vpn.EndToEnd;

/// <summary>
/// The golden path through real processes: admin registration → device → session → the client configured
/// from the returned wg-quick text reaches the internet through the node (NATed) → delete → cut off.
/// </summary>
public sealed class GoldenPathTests(VpnStackFixture stack) : IClassFixture<VpnStackFixture>
{
    [Fact(Timeout = 120_000)]
    public async Task Session_config_tunnels_client_through_node_nat_and_delete_cuts_it_off()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var entry = stack.EntryClient;

        await stack.ReportNodeHealthyAsync(cancellationToken: ct);
        var deviceKeys = await WireGuardKeys.GenerateAsync();
        var device = await stack.CreateCustomerWithDeviceAsync(deviceKeys, ct);
        var customer = device.CustomerId;
        var session = await stack.ExpectStatusAsync(await stack.StartSessionAsync(device, ct), HttpStatusCode.Created);

        // The client is configured from the wg-quick text alone, as a consumer app would.
        var text = session.Text("wireguard_config");
        WgQuickConfig config;
        try
        {
            config = WgQuickConfig.Parse(text);
        }
        catch (FormatException e)
        {
            await stack.FailAsync($"wireguard_config is not a valid wg-quick file ({e.Message}):\n{text}");
            throw;
        }
        var about = $"\nwireguard_config:\n{text}\nsession: {WithoutSessionKey(session.Json)}";
        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine($"session answer (the config carries only the placeholder key):{about}");
        await stack.CheckAsync(config.HasPrivateKeyPlaceholder, $"PrivateKey must be the placeholder '{WgQuickConfig.PrivateKeyPlaceholder}'.{about}");
        await stack.CheckAsync(config.Interface.Addresses.Count == 2 && IsClientAddress(config.Interface.Addresses[0])
            && config.Interface.Addresses[1] == stack.PairedIpv6(config.Interface.Addresses[0]),
            $"Address must be one 10.64.0.x/32 (not the gateway) and its paired fd64:6400::x/128, IPv4 first.{about}");
        await stack.CheckAsync(config.Interface.Dns.Count > 0, $"DNS missing.{about}");
        await stack.CheckAsync(config.Peers.Count == 1, $"exactly one [Peer] expected.{about}");
        var peer = config.Peers[0];
        await stack.CheckAsync(peer.PublicKey == stack.NodeKeys.PublicKey, $"Peer PublicKey must be the node's key {stack.NodeKeys.PublicKey}.{about}");
        await stack.CheckAsync(peer.Endpoint == VpnLab.NodeEndpoint, $"Peer Endpoint must be {VpnLab.NodeEndpoint}.{about}");
        await stack.CheckAsync(peer.AllowedIps.Contains("0.0.0.0/0") && peer.AllowedIps.Contains("::/0"), $"AllowedIPs must contain 0.0.0.0/0 and ::/0.{about}");
        await stack.CheckAsync(peer.PersistentKeepalive is > 0, $"PersistentKeepalive must be set.{about}");
        await stack.CheckAsync(session.Json["interface"]?["address"]?.GetValueKind() == JsonValueKind.String
            && (string?)session.Json["interface"]!["address"] == config.Interface.Addresses[0],
            $"interface.address must equal the wg-quick Address.{about}");

        await stack.Lab.ConfigureClientAsync(config.WithPrivateKey(deviceKeys.PrivateKey));

        var (ok, body, attempts) = await stack.Lab.ClientCurlUntilSuccessAsync(TimeSpan.FromSeconds(15), ct);
        await stack.CheckAsync(ok, $"client → {VpnLab.InetUrl} through the tunnel failed:\n{attempts}{about}");
        await stack.CheckAsync(body == VpnLab.NodeInetSideIp,
            $"inet saw source '{body}', expected the node's NATed address {VpnLab.NodeInetSideIp} (a 10.64.0.x source means no NAT).");

        output?.WriteLine($"inet saw source {body}");

        var peers = await stack.NodeWgShowPeersAsync();
        await stack.CheckAsync(peers.Contains(deviceKeys.PublicKey), $"node peers [{string.Join(", ", peers)}] lack the device key {deviceKeys.PublicKey}.");

        var delete = await entry.CustomerAsync(customer, HttpMethod.Delete, "/v1/sessions/current", cancellationToken: ct);
        await stack.ExpectStatusAsync(delete, HttpStatusCode.NoContent);

        peers = await stack.NodeWgShowPeersAsync();
        await stack.CheckAsync(!peers.Contains(deviceKeys.PublicKey),
            $"after DELETE /v1/sessions/current → 204 the node still has the device peer {deviceKeys.PublicKey}.");

        var afterDelete = await stack.ClientCurlAsync(TimeSpan.FromSeconds(2));
        output?.WriteLine($"after delete: node peers [{string.Join(", ", peers)}], curl exit {afterDelete.ExitCode} {afterDelete.StandardError.Trim()}");
        await stack.CheckAsync(afterDelete.ExitCode != 0, $"curl still succeeded after the session was deleted (body '{afterDelete.StandardOutput.Trim()}').");

        var again = await entry.CustomerAsync(customer, HttpMethod.Delete, "/v1/sessions/current", cancellationToken: ct);
        await stack.ExpectStatusAsync(again, HttpStatusCode.NotFound);
        await stack.CheckAsync(again.ContentType == "application/problem+json", $"second DELETE: expected application/problem+json: {again.Describe()}");
        await stack.CheckAsync(again.Json["code"]?.GetValueKind() == JsonValueKind.String && (string?)again.Json["code"] == "no_active_session",
            $"second DELETE: expected code no_active_session: {again.Describe()}");
        output?.WriteLine($"second delete: {again.Describe()}");
    }

    /// <summary>The session answer for messages, minus the bearer-like session_key.</summary>
    private static string WithoutSessionKey(JsonNode session)
    {
        var copy = session.DeepClone();
        if (copy is JsonObject o && o.Remove("session_key"))
        {
            o["session_key"] = "(redacted)";
        }
        return copy.ToJsonString();
    }

    private static bool IsClientAddress(string cidr)
    {
        var parts = cidr.Split('/');
        return parts.Length == 2 && parts[1] == "32" && IPAddress.TryParse(parts[0], out var ip)
            && ip.GetAddressBytes() is [10, 64, 0, var last] && last is > 1 and < 255;
    }
}
