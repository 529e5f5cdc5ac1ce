namespace Vpn.EndToEnd;

/// <summary>
/// HARNESS SELF-TEST — no service of ours is involved. It proves the topology the golden-path test relies
/// on: the node's WireGuard device is configured by hand (<c>wg set</c>, <c>ip addr</c>, ip_forward and an nft
/// masquerade rule: what core is supposed to do), the client is configured from a wg-quick text through the
/// same parser/apply code the real test uses, and client → inet traffic goes through the tunnel and comes
/// back only because of NAT. If this fails, the golden-path failure is the harness's, not the services'.
/// </summary>
public sealed class HarnessSelfTests
{
    [Fact(Timeout = 90_000)]
    public async Task Harness_tunnel_with_hand_configured_node_reaches_inet_only_through_nat()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var lab = await CreateLabAsync();
        try
        {
            var nodeKeys = await WireGuardKeys.GenerateAsync();
            var clientKeys = await WireGuardKeys.GenerateAsync();
            const string clientAddress = "10.64.0.2/32";

            // Node, by hand.
            var nodeKeyFile = nodeKeys.WritePrivateKeyFile(Path.Combine(lab.WorkDirectory, "node.key"));
            await lab.Node.ExecCheckedAsync("wg", "set", lab.NodeInterface, "private-key", nodeKeyFile, "listen-port", VpnLab.NodeListenPort.ToString(),
                "peer", clientKeys.PublicKey, "allowed-ips", clientAddress);
            await lab.Node.ExecCheckedAsync("ip", "addr", "add", VpnLab.PoolGateway, "dev", lab.NodeInterface);
            await lab.Node.ExecCheckedAsync("ip", "link", "set", lab.NodeInterface, "up");
            await lab.Node.ExecCheckedAsync("sysctl", "-qw", "net.ipv4.ip_forward=1");

            // Client, from a wg-quick text shaped like entry's.
            var text = $"""
                [Interface]
                PrivateKey = {WgQuickConfig.PrivateKeyPlaceholder}
                Address = {clientAddress}
                DNS = 10.64.0.1

                [Peer]
                PublicKey = {nodeKeys.PublicKey}
                Endpoint = {VpnLab.NodeEndpoint}
                AllowedIPs = 0.0.0.0/0
                PersistentKeepalive = 25
                """;
            var config = WgQuickConfig.Parse(text);
            Assert.True(config.HasPrivateKeyPlaceholder);
            await lab.ConfigureClientAsync(config.WithPrivateKey(clientKeys.PrivateKey));

            // The tunnel itself works: the gateway answers over WireGuard.
            await VpnLab.WaitUntilAsync(async () => (await lab.Client.ExecAsync("ping", "-c", "1", "-W", "1", "10.64.0.1")).ExitCode == 0,
                TimeSpan.FromSeconds(15), () => "client could not ping the node's tunnel gateway 10.64.0.1", ct);
            Assert.Contains(clientKeys.PublicKey, await lab.NodeWgShowPeersAsync());

            // Without NAT inet cannot answer: it has no route to 10.64.0.0/24.
            var withoutNat = await lab.ClientCurlAsync(TimeSpan.FromSeconds(2));
            Assert.True(withoutNat.ExitCode != 0, $"curl succeeded without NAT (body '{withoutNat.StandardOutput}'): inet must not route the pool");

            var nft = await lab.Node.ExecAsync("nft", ["-f", "-"], $$"""
                table ip e2e_selftest {
                    chain postrouting {
                        type nat hook postrouting priority srcnat; policy accept;
                        ip saddr {{VpnLab.ClientPool}} oifname "{{lab.NodeUplink}}" masquerade
                    }
                }
                """);
            nft.EnsureSuccess("nft -f (masquerade)");

            var (ok, body, attempts) = await lab.ClientCurlUntilSuccessAsync(TimeSpan.FromSeconds(15), ct);
            Assert.True(ok, $"curl through the tunnel failed:\n{attempts}");
            Assert.Equal(VpnLab.NodeInetSideIp, body);

            // Removing the peer on the node cuts the client off.
            await lab.Node.ExecCheckedAsync("wg", "set", lab.NodeInterface, "peer", clientKeys.PublicKey, "remove");
            Assert.DoesNotContain(clientKeys.PublicKey, await lab.NodeWgShowPeersAsync());
            var afterRemove = await lab.ClientCurlAsync(TimeSpan.FromSeconds(2));
            Assert.True(afterRemove.ExitCode != 0, $"curl still worked after the peer was removed: '{afterRemove.StandardOutput}'");
        }
        catch (Exception e) when (!e.Message.StartsWith(VpnStackFixture.SkipToken, StringComparison.Ordinal))
        {
            throw new Xunit.Sdk.XunitException($"{e.Message}\n\n=== lab state ===\n{await lab.DescribeAsync()}", e);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Harness_node_wireguard_restart_comes_back_empty()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var lab = await CreateLabAsync();
        var peer = await WireGuardKeys.GenerateAsync();
        await lab.Node.ExecCheckedAsync("wg", "set", lab.NodeInterface, "peer", peer.PublicKey, "allowed-ips", "10.64.0.9/32");
        Assert.Contains(peer.PublicKey, await lab.NodeWgShowPeersAsync());

        await lab.RestartNodeWireGuardAsync();
        ct.ThrowIfCancellationRequested();

        Assert.Empty(await lab.NodeWgShowPeersAsync());
    }

    /// <summary>A <see cref="VpnLab"/>, once what it needs is there (missing: skip locally, fail under CI).</summary>
    private static async Task<VpnLab> CreateLabAsync()
    {
        Prerequisites.RequireNetworkLab();
        Prerequisites.RequireExecutable("curl");
        Prerequisites.RequireExecutable("python3");
        return await VpnLab.CreateAsync();
    }
}
