using Vpn.Core.Tests.Configuration;

namespace Vpn.Core.Tests.Dns;

/// <summary>The unbound.conf core renders for its resolver: exact text for known settings, and real unbound-checkconf on it.</summary>
public class ResolverConfigTests
{
    private static CoreOptions Load(Dictionary<string, string?> settings)
    {
        var (options, errors) = CoreSettings.Load(settings);
        Assert.Empty(errors);
        return options;
    }

    // The lines every rendering shares: the header, the transports, the refused sources, and from the privacy settings
    // to the private-address list. The tests below spell out what depends on the settings.
    private static string Head(string gateway, string gateway6) => $"""
        # unbound.conf of this node's resolver, rendered by `Vpn.Core resolver-config` from core's settings.
        # Do not edit: it is rendered again on every start.
        server:
            interface: {gateway}
            interface: {gateway6}
            port: 53
            ip-freebind: yes
            do-ip4: yes
            do-ip6: yes
            do-udp: yes
            do-tcp: yes

        """;

    private const string Refused = """
            access-control: 0.0.0.0/0 refuse
            access-control: ::/0 refuse
            access-control: 127.0.0.0/8 refuse
            access-control: ::1 refuse
            access-control: ::ffff:127.0.0.1 refuse

        """;

    private const string Quiet = """
            chroot: ""
            username: ""
            pidfile: ""
            use-syslog: no
            logfile: ""
            log-time-ascii: yes
            verbosity: 0
            log-queries: no
            log-replies: no
            log-servfail: no
            log-local-actions: no
            val-log-level: 0
            statistics-interval: 0
            statistics-cumulative: no
            extended-statistics: no
            hide-identity: yes
            hide-version: yes
            hide-trustanchor: yes
            qname-minimisation: yes
            minimal-responses: yes
            private-address: 0.0.0.0/8
            private-address: 10.0.0.0/8
            private-address: 100.64.0.0/10
            private-address: 127.0.0.0/8
            private-address: 169.254.0.0/16
            private-address: 172.16.0.0/12
            private-address: 192.168.0.0/16
            private-address: ::/127
            private-address: ::ffff:0:0/96
            private-address: fc00::/7
            private-address: fe80::/10

        """;

    private static string Lf(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal);

    [Fact]
    public void Render_Defaults_ListensOnBothGatewaysRecursesAndValidates()
    {
        var text = ResolverConfig.Render(Load([]));

        Assert.Equal(Lf(Head("10.64.0.1", "fd64:6400::1") + Refused + """
                access-control: 10.64.0.0/16 allow
                access-control: fd64:6400::/64 allow

            """ + Quiet + """
                module-config: "validator iterator"
                trust-anchor-file: "/usr/share/dns/root.key"
            remote-control:
                control-enable: no

            """), text);
    }

    [Fact]
    public void Render_UpstreamsWithoutDnssecOrIpv6_ForwardsOverIpv4AndGuardsPublicPools()
    {
        var pool = Ipv4Network.Parse("198.18.0.0/20");
        Assert.True(Ipv6ClientNetwork.TryCreate("2001:db8:64::/64", pool, out var pool6, out _));
        var options = new CoreOptions
        {
            ClientPool = pool,
            ClientPool6 = pool6,
            DnsUpstreams = ["127.0.0.1@5353", "9.9.9.9"],
            DnsSec = false,
            Ipv6Egress = false,
        };

        var text = ResolverConfig.Render(options);

        Assert.Equal(Lf(Head("198.18.0.1", "2001:db8:64::1") + """
                outgoing-interface: 0.0.0.0

            """ + Refused + """
                access-control: 198.18.0.0/20 allow
                access-control: 2001:db8:64::/64 allow

            """ + Quiet + """
                private-address: 198.18.0.0/20
                private-address: 2001:db8:64::/64
                do-not-query-localhost: no
                module-config: "iterator"
            remote-control:
                control-enable: no
            forward-zone:
                name: "."
                forward-addr: 127.0.0.1@5353
                forward-addr: 9.9.9.9

            """), text);
    }

    [Fact]
    public void Render_PublicUpstreamsOnly_KeepsLocalhostUnqueried()
    {
        var text = ResolverConfig.Render(Load(new() { ["WG_DNS_UPSTREAMS"] = "9.9.9.9, 2620:fe::fe@53", ["WG_DNS_TRUST_ANCHOR_FILE"] = "/etc/unbound/root.key" }));

        Assert.DoesNotContain("do-not-query-localhost", text, StringComparison.Ordinal);
        Assert.EndsWith("""
                module-config: "validator iterator"
                trust-anchor-file: "/etc/unbound/root.key"
            remote-control:
                control-enable: no
            forward-zone:
                name: "."
                forward-addr: 9.9.9.9
                forward-addr: 2620:fe::fe@53

            """.Replace("\r\n", "\n", StringComparison.Ordinal), text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("relative/root.key")]
    [InlineData("/etc/unbound/\"root.key")]
    [InlineData("/etc/unbound/root.key\ninclude: /etc/passwd")]
    public void Load_TrustAnchorFileThatCouldBreakTheConfig_IsAProblem(string path)
    {
        var (_, errors) = CoreSettings.Load(("WG_DNS_TRUST_ANCHOR_FILE", path));

        Assert.Contains(errors, e => e.StartsWith("WG_DNS_TRUST_ANCHOR_FILE", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_Ipv6UpstreamOnANodeWithoutIpv6_IsAProblem()
    {
        var (_, errors) = CoreSettings.Load(("WG_DNS_UPSTREAMS", "9.9.9.9,::1@5353,2620:fe::fe"), ("WG_IPV6_EGRESS", "false"));

        Assert.Equal(["WG_DNS_UPSTREAMS lists an IPv6 resolver, but WG_IPV6_EGRESS=false says the node has no IPv6 path to the internet."], errors);
    }

    [Theory]
    [InlineData("0", false)]
    [InlineData("3601", false)]
    [InlineData("5", true)]
    public void Load_ResolverCheckSecs_IsBounded(string value, bool valid)
    {
        var (options, errors) = CoreSettings.Load(("CORE_RESOLVER_CHECK_SECS", value));

        Assert.Equal(valid, errors.Count == 0);
        Assert.Equal(valid ? TimeSpan.FromSeconds(5) : TimeSpan.FromSeconds(10), options.ResolverCheckInterval);
    }

    public static TheoryData<string, Dictionary<string, string?>> Combinations => new()
    {
        { "defaults", new() },
        { "forwarding to loopback and public upstreams", new() { ["WG_DNS_UPSTREAMS"] = "127.0.0.1@5353,9.9.9.9,2620:fe::fe@53" } },
        { "no dnssec", new() { ["WG_DNS_DNSSEC"] = "false", ["WG_DNS_UPSTREAMS"] = "9.9.9.9" } },
        { "no ipv6 egress, small public pools", new() { ["WG_IPV6_EGRESS"] = "false", ["WG_CLIENT_POOL"] = "198.18.4.0/24", ["WG_CLIENT_POOL_V6"] = "2001:db8:4::/120" } },
        { "large pool, full recursion, no dnssec", new() { ["WG_CLIENT_POOL"] = "10.0.0.0/8", ["WG_CLIENT_POOL_V6"] = "fd00:64::/96", ["WG_DNS_DNSSEC"] = "0" } },
    };

    /// <summary>What the init container does (the command from the environment), checked by unbound's own parser.</summary>
    [Theory]
    [MemberData(nameof(Combinations))]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Command_SettingCombination_WritesAConfigUnboundAccepts(string name, Dictionary<string, string?> settings)
    {
        Prerequisites.RequireExecutable("unbound-checkconf");
        // DNSSEC configurations name Debian's trust anchor (dns-root-data), which checkconf reads.
        Prerequisites.Require(File.Exists("/usr/share/dns/root.key"), "/usr/share/dns/root.key (dns-root-data)");
        var directory = Directory.CreateTempSubdirectory("resolver-config-");
        try
        {
            var path = Path.Combine(directory.FullName, "unbound", "unbound.conf");
            using var output = new StringWriter();
            using var error = new StringWriter();

            var exit = ResolverConfigCommand.Run(["--out", path], CoreSettings.Configuration(settings), output, error);

            Assert.True(exit == 0, $"{name}: {error}");
            Assert.Equal(ResolverConfig.Render(Load(settings)), await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(path));
            var check = await ProcessRunner.RunAsync(Prerequisites.FindExecutable("unbound-checkconf")!, path);
            Assert.True(check.ExitCode == 0, $"{name}: unbound-checkconf: {check.StandardError} {check.StandardOutput}");
            Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Command_InvalidSettings_PrintsEveryProblemAndExits2()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var path = Path.Combine(Path.GetTempPath(), $"never-{Guid.NewGuid():N}.conf");
        var settings = new Dictionary<string, string?>
        {
            ["WG_DNS_UPSTREAMS"] = "9.9.9.9,resolver.example",
            ["WG_DNS_DNSSEC"] = "maybe",
            ["CORE_RESOLVER_CHECK_SECS"] = "0",
        };

        var exit = ResolverConfigCommand.Run(["--out", path], CoreSettings.Configuration(settings), output, error);

        Assert.Equal(2, exit);
        Assert.False(File.Exists(path));
        var message = error.ToString();
        Assert.Contains("WG_DNS_UPSTREAMS: 'resolver.example'", message, StringComparison.Ordinal);
        Assert.Contains("WG_DNS_DNSSEC must be true or false.", message, StringComparison.Ordinal);
        Assert.Contains("CORE_RESOLVER_CHECK_SECS must be an integer between 1 and 3600.", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--out")]
    [InlineData("--out|")]
    [InlineData("--out|/tmp/a.conf|--out|/tmp/b.conf")]
    [InlineData("--output|/tmp/a.conf")]
    public void Command_BadArguments_PrintsUsageAndExits2(string joined)
    {
        var arguments = joined.Split('|');
        using var output = new StringWriter();
        using var error = new StringWriter();

        var exit = ResolverConfigCommand.Run(arguments, CoreSettings.Configuration([]), output, error);

        Assert.Equal(2, exit);
        Assert.StartsWith("usage: Vpn.Core resolver-config", error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>The core binary itself dispatches the command: it exits without starting the service.</summary>
    [Fact]
    public async Task CoreBinary_ResolverConfig_WritesTheFileOrExits2()
    {
        var dll = CoreDll();
        Prerequisites.Require(File.Exists(dll), $"built core at {dll}");
        var directory = Directory.CreateTempSubdirectory("resolver-config-");
        try
        {
            var path = Path.Combine(directory.FullName, "unbound.conf");
            var good = await ProcessRunner.RunAsync("dotnet", [dll, "resolver-config", "--out", path], null, TimeSpan.FromSeconds(60),
                new Dictionary<string, string> { ["WG_CLIENT_POOL"] = "10.99.0.0/24", ["WG_DNS_UPSTREAMS"] = "9.9.9.9" });
            var bad = await ProcessRunner.RunAsync("dotnet", [dll, "resolver-config", "--out", path + ".bad"], null, TimeSpan.FromSeconds(60),
                new Dictionary<string, string> { ["WG_CLIENT_POOL"] = "10.99.0.0", ["WG_DATAPLANE"] = "linux" });

            Assert.True(good.ExitCode == 0, good.StandardError);
            var text = await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken);
            Assert.Contains("    interface: 10.99.0.1\n", text, StringComparison.Ordinal);
            Assert.Contains("    forward-addr: 9.9.9.9\n", text, StringComparison.Ordinal);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains("WG_CLIENT_POOL must be", bad.StandardError, StringComparison.Ordinal);
            Assert.Contains("WG_PRIVATE_KEY or WG_PRIVATE_KEY_FILE is required", bad.StandardError, StringComparison.Ordinal);
            Assert.False(File.Exists(path + ".bad"));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    internal static string CoreDll()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = dir.Parent!.Name;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Vpn.slnx")))
        {
            dir = dir.Parent;
        }
        return Path.Combine(dir?.FullName ?? "/nonexistent", "src", "Vpn.Core", "bin", configuration, "net10.0", "Vpn.Core.dll");
    }
}
