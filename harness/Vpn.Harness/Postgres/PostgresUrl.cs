using Npgsql;

namespace Vpn.Harness.Postgres;

/// <summary>Converts between Npgsql key=value connection strings and <c>postgres://user:password@host:port/db</c> URLs.</summary>
internal static class PostgresUrl
{
    public static bool IsUrl(string value) =>
        value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase);

    /// <summary>Accepts either form and returns a connection string builder.</summary>
    public static NpgsqlConnectionStringBuilder Parse(string value)
    {
        if (!IsUrl(value))
        {
            return new NpgsqlConnectionStringBuilder(value);
        }
        var uri = new Uri(value);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.IdnHost.Trim('[', ']'),
            Port = uri.Port > 0 ? uri.Port : 5432,
        };
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0)
            {
                builder.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }
        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length > 0)
        {
            builder.Database = database;
        }
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(parts[0]);
            var parameter = parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "";
            if (key.Equals("sslmode", StringComparison.OrdinalIgnoreCase) &&
                Enum.TryParse<SslMode>(parameter.Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out var sslMode))
            {
                builder.SslMode = sslMode;
            }
            else if (key.Equals("host", StringComparison.OrdinalIgnoreCase) && parameter.Length > 0)
            {
                builder.Host = parameter; // libpq form for a unix socket directory
            }
        }
        return builder;
    }

    public static string Format(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var host = builder.Host;
        if (string.IsNullOrEmpty(host) || host.Contains(',', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Need exactly one host to build a URL, got '{host}'.", nameof(connectionString));
        }
        if (host.StartsWith('/') || host.StartsWith('@'))
        {
            throw new ArgumentException($"'{host}' is a unix socket directory; ToUrl produces TCP URLs. Use the server's Host/Port connection string.", nameof(connectionString));
        }
        if (host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('['))
        {
            host = $"[{host}]"; // IPv6 literal
        }
        var userInfo = "";
        if (!string.IsNullOrEmpty(builder.Username))
        {
            userInfo = Uri.EscapeDataString(builder.Username);
            if (!string.IsNullOrEmpty(builder.Password))
            {
                userInfo += ":" + Uri.EscapeDataString(builder.Password);
            }
            userInfo += "@";
        }
        var port = builder.Port.ToString(CultureInfo.InvariantCulture);
        var url = $"postgres://{userInfo}{host}:{port}/{Uri.EscapeDataString(builder.Database ?? "")}";
        if (builder.SslMode is SslMode.Require or SslMode.VerifyCA or SslMode.VerifyFull)
        {
            url += "?sslmode=" + builder.SslMode switch
            {
                SslMode.Require => "require",
                SslMode.VerifyCA => "verify-ca",
                _ => "verify-full",
            };
        }
        return url;
    }
}
