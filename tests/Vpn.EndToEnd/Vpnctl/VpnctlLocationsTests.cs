using Vpn.Cli;
using Vpn.TestSupport;

namespace Vpn.EndToEnd.Vpnctl;

// The reference client's location picker: the signed server list from the real entry, verified with the pinned key.
public sealed partial class VpnctlTests
{
    [Fact]
    public async Task Client_locations_verified_with_the_pinned_key_and_refused_with_another()
    {
        stack.EnsureReady();

        var shown = await Expect(await stack.RunAsync("client", "locations", "--trust-key", stack.CatalogPublicKey), ExitCodes.Ok,
            "verified: signed by ed25519-", "REGION", VpnStackFixture.Region);
        var json = await Expect(await stack.RunAsync("client", "locations", "--trust-key", stack.CatalogPublicKey, "--json"), ExitCodes.Ok);
        var mine = json.Json["locations"]!.AsArray().Single(l => (string?)l!["region"] == VpnStackFixture.Region)!;
        await stack.CheckAsync(json.Json["verified"]!.GetValue<bool>() && mine["available"]!.GetValue<bool>()
            && !shown.Out.Contains(stack.Consumer.NodeEndpoint, StringComparison.Ordinal),
            $"the list is verified, the lab's region available, no node endpoint in it\n{json.Describe()}");

        var otherKey = Convert.ToBase64String(new CatalogSigningKey().PublicKey);
        await ExpectError(await stack.RunAsync("client", "locations", "--trust-key", otherKey), ExitCodes.CheckFailed,
            "error: the server list is not to be trusted: it is signed by key ed25519-");
        await ExpectError(await stack.RunAsync("client", "locations"), ExitCodes.Usage, "no pinned key");
    }
}
