using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Vpn.Domain.Addressing;
using Vpn.ServiceDefaults;

namespace Vpn.Core.Configuration;

// The readers of single settings (TLS files, URLs, CIDR lists, resolver upstreams, paths) that Load combines; each
// adds its problems to the list instead of throwing.
public sealed partial class CoreOptions
{
    private static (X509Certificate2? Certificate, X509Certificate2Collection? ClientAuthorities, bool Require) LoadTls(
        IConfiguration configuration, bool production, string grpcListen, List<string> problems)
    {
        var require = Settings.Flag(configuration, "CORE_REQUIRE_TLS", production, problems);
        if (production && !require)
        {
            problems.Add("CORE_REQUIRE_TLS must be true in production.");
        }
        var certificateFile = configuration["CORE_TLS_CERT_FILE"];
        var caFile = configuration["CORE_TLS_CLIENT_CA_FILE"];
        X509Certificate2Collection? authorities = null;
        var certificate = TlsFiles.LoadCertificate(configuration, "CORE_TLS_CERT_FILE", "CORE_TLS_KEY_FILE", TlsFiles.ServerAuthentication, problems);
        if (!string.IsNullOrEmpty(caFile))
        {
            authorities = TlsFiles.LoadAuthorities(caFile, "CORE_TLS_CLIENT_CA_FILE", problems);
            if (string.IsNullOrEmpty(certificateFile))
            {
                problems.Add("CORE_TLS_CLIENT_CA_FILE needs CORE_TLS_CERT_FILE and CORE_TLS_KEY_FILE (client certificates are asked for over TLS).");
            }
        }
        var tcp = !UnixSocketEndpoint.IsUnix(grpcListen);
        if (require && tcp && (string.IsNullOrEmpty(certificateFile) || string.IsNullOrEmpty(caFile)))
        {
            problems.Add("CORE_REQUIRE_TLS needs CORE_TLS_CERT_FILE, CORE_TLS_KEY_FILE and CORE_TLS_CLIENT_CA_FILE for a TCP CORE_GRPC_LISTEN.");
        }
        return (certificate, authorities, require);
    }

    /// <summary>http and https with a host, or unix: with an absolute socket path.</summary>
    internal static bool TryParseEntryUrl(string text, [NotNullWhen(true)] out Uri? url)
    {
        url = null;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var candidate))
        {
            return false;
        }
        var valid = candidate.Scheme switch
        {
            "http" or "https" => !string.IsNullOrEmpty(candidate.Host) && string.IsNullOrEmpty(candidate.Query),
            UnixSocketEndpoint.Scheme => text.StartsWith(UnixSocketEndpoint.Prefix + "/", StringComparison.Ordinal) && candidate.AbsolutePath.Length > 1,
            _ => false,
        };
        url = valid ? candidate : null;
        return valid;
    }

    private static Ipv6ClientNetwork DefaultPool6(Ipv4Network pool4) =>
        Ipv6ClientNetwork.TryCreate("fd64:6400::/64", pool4, out var network, out _) ? network : throw new InvalidOperationException("default IPv6 pool");

    /// <summary>Comma-separated canonical CIDRs of either family (host bits zero).</summary>
    internal static IReadOnlyList<System.Net.IPNetwork> Networks(IConfiguration configuration, string name, List<string> problems)
    {
        var text = configuration[name];
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }
        var networks = new List<System.Net.IPNetwork>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (item.Contains('/', StringComparison.Ordinal) && System.Net.IPNetwork.TryParse(item, out var network)
                && network.ToString() == item)
            {
                networks.Add(network);
            }
            else
            {
                problems.Add($"{name}: '{item}' is not a CIDR network with its host bits zero, e.g. 10.20.0.0/16 or 2001:db8::/32.");
            }
        }
        return networks;
    }

    /// <summary>WG_DNS_UPSTREAMS items: an IP address, optionally @port (unbound's forward-addr syntax).</summary>
    internal static IReadOnlyList<string> Upstreams(string? text, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }
        var upstreams = new List<string>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var at = item.IndexOf('@', StringComparison.Ordinal);
            var host = at < 0 ? item : item[..at];
            var portOk = at < 0 || (int.TryParse(item.AsSpan(at + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535);
            if (System.Net.IPAddress.TryParse(host, out var address) && address.ToString() == host
                && (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6 || address.ScopeId == 0) && portOk)
            {
                upstreams.Add(item);
            }
            else
            {
                problems.Add($"WG_DNS_UPSTREAMS: '{item}' is not an IP address with an optional @port, e.g. 9.9.9.9 or 2620:fe::fe@53.");
            }
        }
        return upstreams;
    }

    /// <summary>The address of a validated WG_DNS_UPSTREAMS item (ip or ip@port).</summary>
    internal static System.Net.IPAddress UpstreamAddress(string upstream)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        var at = upstream.IndexOf('@', StringComparison.Ordinal);
        return System.Net.IPAddress.Parse(at < 0 ? upstream : upstream[..at]);
    }

    /// <summary>An absolute path; nothing that could end the quoted string in unbound.conf.</summary>
    private static string TrustAnchorFile(string? value, List<string> problems)
    {
        const string fallback = "/usr/share/dns/root.key";
        if (string.IsNullOrEmpty(value))
        {
            return fallback;
        }
        if (value.StartsWith('/') && !value.Any(c => char.IsControl(c) || c is '"' or '\\'))
        {
            return value;
        }
        problems.Add("WG_DNS_TRUST_ANCHOR_FILE must be an absolute path without quotes, backslashes or control characters.");
        return fallback;
    }

    private static string? MetricsEndpoint(string? value, List<string> problems)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }
        if (System.Net.IPEndPoint.TryParse(value, out var endpoint) && endpoint.Port > 0)
        {
            return value;
        }
        problems.Add("CORE_METRICS_LISTEN must be ip:port, e.g. 127.0.0.1:9464.");
        return null;
    }
}
