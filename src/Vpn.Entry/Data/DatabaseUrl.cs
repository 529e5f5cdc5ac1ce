using System.Globalization;
using Npgsql;

namespace Vpn.Entry.Data;

/// <summary>
/// DATABASE_URL in libpq's URL form or Npgsql's key=value form, to an Npgsql connection string.
/// <list type="bullet">
/// <item><c>postgres[ql]://user:pass@host:port/db?sslmode=require</c> — one host, as in the original system;</item>
/// <item><c>postgres://user:pass@h1:p1,h2:p2/db?target_session_attrs=read-write</c> — several hosts (libpq), or the same
/// as <c>?host=h1,h2&amp;port=p1,p2</c> (one port for all, or one per host);</item>
/// <item>Npgsql's <c>Host=h1:p1,h2:p2;…</c> as is.</item>
/// </list>
/// Several hosts become Npgsql multi-host: <c>Target Session Attributes</c> defaults to <c>read-write</c> (only the
/// primary takes writes) and <c>Host Recheck Seconds</c> to 1, so a promoted standby is found within a second of a
/// switchover instead of Npgsql's 10. Errors are <see cref="FormatException"/>s that say what is wrong and never quote
/// the value (it carries the password).
/// </summary>
public static class DatabaseUrl
{
    /// <summary>Npgsql's and libpq's spellings; both accept these.</summary>
    private static readonly HashSet<string> s_sessionAttributes =
        ["any", "read-write", "read-only", "primary", "standby", "prefer-standby", "prefer-primary"];

    private const int MultiHostRecheckSeconds = 1;

    public static string ToConnectionString(string value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value);
        value = value.Trim();
        var builder = IsUrl(value) ? ParseUrl(value) : ParseKeyValue(value);
        if (string.IsNullOrEmpty(builder.Host))
        {
            throw new FormatException("DATABASE_URL names no host.");
        }
        if (builder.Host.Contains(',', StringComparison.Ordinal))
        {
            builder.TargetSessionAttributes ??= "read-write";
            // Unless the operator chose (Host Recheck Seconds=…, HostRecheckSeconds=…).
            if (!value.Contains("recheck", StringComparison.OrdinalIgnoreCase))
            {
                builder.HostRecheckSeconds = MultiHostRecheckSeconds;
            }
        }
        return builder.ConnectionString;
    }

    /// <summary>How many hosts a connection string names (Npgsql's comma-separated Host).</summary>
    public static int HostCount(string connectionString) =>
        (new NpgsqlConnectionStringBuilder(connectionString).Host ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Length;

    private static bool IsUrl(string value) =>
        value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase);

    private static NpgsqlConnectionStringBuilder ParseKeyValue(string value)
    {
        try
        {
            return new NpgsqlConnectionStringBuilder(value);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException)
        {
            throw new FormatException("DATABASE_URL is neither a postgres:// URL nor an Npgsql connection string (Key=Value;…).");
        }
    }

    private static NpgsqlConnectionStringBuilder ParseUrl(string value)
    {
        var rest = value[(value.IndexOf("://", StringComparison.Ordinal) + 3)..];
        // libpq: the authority ends at the first '/' or '?'; reserved characters in user or password must be percent-encoded.
        var authorityEnd = rest.IndexOfAny(['/', '?']);
        var authority = authorityEnd < 0 ? rest : rest[..authorityEnd];
        var tail = authorityEnd < 0 ? "" : rest[authorityEnd..];
        var queryStart = tail.IndexOf('?', StringComparison.Ordinal);
        var path = queryStart < 0 ? tail : tail[..queryStart];
        var query = queryStart < 0 ? "" : tail[(queryStart + 1)..];

        var builder = new NpgsqlConnectionStringBuilder();
        var at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            var userInfo = authority[..at];
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Unescape(colon < 0 ? userInfo : userInfo[..colon], "the user name");
            if (colon >= 0)
            {
                builder.Password = Unescape(userInfo[(colon + 1)..], "the password");
            }
            authority = authority[(at + 1)..];
        }
        var hosts = authority.Length == 0 ? [] : authority.Split(',').Select((h, i) => SplitHostPort(h, i)).ToList();
        var database = Unescape(path.TrimStart('/'), "the database name");
        if (database.Length > 0)
        {
            builder.Database = database;
        }
        List<string>? queryPorts = null;
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Unescape(kv[0], "a query parameter name");
            var parameter = kv.Length == 2 ? Unescape(kv[1], $"query parameter '{key}'") : "";
            switch (key.ToLowerInvariant())
            {
                case "host":
                    hosts = [.. parameter.Split(',').Select((h, i) => (Host: RequireHost(h.Trim(), i), Port: (string?)null))];
                    break;
                case "port":
                    queryPorts = [.. parameter.Split(',').Select(p => p.Trim())];
                    break;
                case "sslmode":
                    builder.SslMode = Enum.TryParse<SslMode>(parameter.Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out var mode)
                        ? mode : throw new FormatException("DATABASE_URL: sslmode must be disable, allow, prefer, require, verify-ca or verify-full.");
                    break;
                case "target_session_attrs":
                    builder.TargetSessionAttributes = s_sessionAttributes.Contains(parameter.ToLowerInvariant()) ? parameter.ToLowerInvariant()
                        : throw new FormatException("DATABASE_URL: target_session_attrs must be any, read-write, read-only, primary, standby or prefer-standby.");
                    break;
                case "connect_timeout":
                    builder.Timeout = int.TryParse(parameter, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds is > 0 and <= 1024
                        ? seconds : throw new FormatException("DATABASE_URL: connect_timeout must be a number of seconds (1–1024).");
                    break;
                case "application_name":
                    builder.ApplicationName = parameter;
                    break;
                case "user":
                    builder.Username = parameter;
                    break;
                case "password":
                    builder.Password = parameter;
                    break;
                case "dbname":
                    builder.Database = parameter;
                    break;
                default:
                    SetNpgsqlKey(builder, key, parameter);
                    break;
            }
        }
        if (hosts.Count == 0)
        {
            throw new FormatException("DATABASE_URL names no host (postgres://user:password@host:port/database).");
        }
        var ports = Ports(hosts, queryPorts);
        if (hosts.Count == 1)
        {
            builder.Host = hosts[0].Host;
            builder.Port = ports[0];
        }
        else
        {
            builder.Host = string.Join(',', hosts.Select((h, i) => $"{h.Host}:{ports[i].ToString(CultureInfo.InvariantCulture)}"));
        }
        return builder;
    }

    // "host", "host:port", "[v6]" or "[v6]:port"; the port stays text until every source of ports is known.
    private static (string Host, string? Port) SplitHostPort(string text, int index)
    {
        string host;
        string? port = null;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || (close + 1 < text.Length && text[close + 1] != ':'))
            {
                throw new FormatException($"DATABASE_URL: host {index + 1} is a malformed IPv6 literal (expected [address] or [address]:port).");
            }
            host = text[..(close + 1)];
            port = close + 1 < text.Length ? text[(close + 2)..] : null;
        }
        else
        {
            var colon = text.LastIndexOf(':');
            host = colon < 0 ? text : text[..colon];
            port = colon < 0 ? null : text[(colon + 1)..];
        }
        return (RequireHost(Unescape(host, $"host {index + 1}"), index), port);
    }

    private static string RequireHost(string host, int index) =>
        host.Length > 0 ? host : throw new FormatException($"DATABASE_URL: host {index + 1} is empty (a stray comma, or an unencoded '@' or ':' in the password?).");

    private static List<int> Ports(List<(string Host, string? Port)> hosts, List<string>? queryPorts)
    {
        if (queryPorts is not null && queryPorts.Count != 1 && queryPorts.Count != hosts.Count)
        {
            throw new FormatException($"DATABASE_URL: port lists {queryPorts.Count} ports for {hosts.Count} hosts (give one port, or one per host).");
        }
        var ports = new List<int>(hosts.Count);
        for (var i = 0; i < hosts.Count; i++)
        {
            var text = hosts[i].Port is { Length: > 0 } own ? own : queryPorts?[queryPorts.Count == 1 ? 0 : i];
            if (string.IsNullOrEmpty(text))
            {
                ports.Add(5432);
            }
            else if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 1 and <= 65535)
            {
                ports.Add(port);
            }
            else
            {
                // Never quote it: a password with an unencoded ':' or '@' ends up here.
                throw new FormatException($"DATABASE_URL: the port of host {i + 1} is not a number from 1 to 65535 (percent-encode reserved characters in the password).");
            }
        }
        return ports;
    }

    private static void SetNpgsqlKey(NpgsqlConnectionStringBuilder builder, string key, string value)
    {
        try
        {
            builder[key] = value;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException or KeyNotFoundException)
        {
            throw new FormatException($"DATABASE_URL: query parameter '{key}' is neither a libpq parameter entry understands nor a valid Npgsql setting.");
        }
    }

    private static string Unescape(string text, string what)
    {
        try
        {
            return Uri.UnescapeDataString(text);
        }
        catch (UriFormatException)
        {
            throw new FormatException($"DATABASE_URL: {what} is not valid percent-encoding.");
        }
    }
}
