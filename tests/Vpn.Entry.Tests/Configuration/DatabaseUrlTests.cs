using Vpn.Entry.Data;

namespace Vpn.Entry.Tests.Configuration;

/// <summary>DATABASE_URL: libpq URLs with one or several hosts and Npgsql key=value strings; bad input is refused without the password.</summary>
public sealed class DatabaseUrlTests
{
    private const string Password = "s3cr3t-Pa55";

    private static NpgsqlConnectionStringBuilder Parse(string value) => new(DatabaseUrl.ToConnectionString(value));

    [Fact]
    public void SingleHost_KeepsHostPortDatabaseUserAndSslMode()
    {
        var b = Parse($"postgres://vpn:{Password}@db.internal:6432/vpn?sslmode=require");

        Assert.Equal("db.internal", b.Host);
        Assert.Equal(6432, b.Port);
        Assert.Equal("vpn", b.Database);
        Assert.Equal("vpn", b.Username);
        Assert.Equal(Password, b.Password);
        Assert.Equal(SslMode.Require, b.SslMode);
        Assert.Null(b.TargetSessionAttributes); // one host: nothing to choose between
    }

    [Fact]
    public void SingleHost_WithoutPort_Is5432()
    {
        var b = Parse("postgresql://vpn@db/vpn");
        Assert.Equal("db", b.Host);
        Assert.Equal(5432, b.Port);
    }

    [Fact]
    public void SeveralHostsInAuthority_BecomeMultiHost_ReadWriteByDefault()
    {
        var b = Parse($"postgres://vpn:{Password}@pg-a:5433,pg-b:5434,pg-c/vpn");

        Assert.Equal("pg-a:5433,pg-b:5434,pg-c:5432", b.Host);
        Assert.Equal("read-write", b.TargetSessionAttributes);
        Assert.Equal(1, b.HostRecheckSeconds);
        Assert.Equal(Password, b.Password);
        Assert.Equal(3, DatabaseUrl.HostCount(b.ConnectionString));
    }

    [Theory]
    [InlineData("primary")]
    [InlineData("any")]
    [InlineData("prefer-standby")]
    public void TargetSessionAttrs_Given_IsKept(string attributes)
    {
        var b = Parse($"postgres://vpn@pg-a:5432,pg-b:5432/vpn?target_session_attrs={attributes}");
        Assert.Equal(attributes, b.TargetSessionAttributes);
    }

    [Fact]
    public void HostQueryList_WithOnePortOrOnePerHost()
    {
        var one = Parse("postgres://vpn@/vpn?host=pg-a,pg-b&port=6543");
        var each = Parse("postgres://vpn@/vpn?host=pg-a,pg-b&port=6001,6002&connect_timeout=3");

        Assert.Equal("pg-a:6543,pg-b:6543", one.Host);
        Assert.Equal("pg-a:6001,pg-b:6002", each.Host);
        Assert.Equal(3, each.Timeout);
        Assert.Equal("read-write", each.TargetSessionAttributes);
    }

    [Fact]
    public void Ipv6Literals_KeepTheirBrackets()
    {
        var b = Parse("postgres://vpn@[::1]:5433,[fd00::2]/vpn");
        Assert.Equal("[::1]:5433,[fd00::2]:5432", b.Host);
    }

    [Fact]
    public void PercentEncodedPassword_IsDecoded()
    {
        var b = Parse("postgres://vpn:p%40ss%3Aw%2Frd@pg-a:5432,pg-b:5432/vpn");
        Assert.Equal("p@ss:w/rd", b.Password);
        Assert.Equal("pg-a:5432,pg-b:5432", b.Host);
    }

    [Fact]
    public void KeyValueMultiHost_GetsTheSameDefaults_UnlessChosen()
    {
        var defaults = Parse("Host=pg-a:5432,pg-b:5432;Username=vpn;Database=vpn");
        var chosen = Parse("Host=pg-a:5432,pg-b:5432;Username=vpn;Database=vpn;Target Session Attributes=primary;Host Recheck Seconds=7");

        Assert.Equal("read-write", defaults.TargetSessionAttributes);
        Assert.Equal(1, defaults.HostRecheckSeconds);
        Assert.Equal("primary", chosen.TargetSessionAttributes);
        Assert.Equal(7, chosen.HostRecheckSeconds);
    }

    [Fact]
    public void NpgsqlSettingInQuery_PassesThrough()
    {
        var b = Parse("postgres://vpn@db/vpn?Maximum%20Pool%20Size=12");
        Assert.Equal(12, b.MaxPoolSize);
    }

    [Theory]
    [InlineData($"postgres://vpn:{Password}@/vpn", "names no host")]
    [InlineData($"postgres://vpn:{Password}@pg-a:5432,,pg-b/vpn", "host 2 is empty")]
    [InlineData($"postgres://vpn:{Password}@pg-a:notaport/vpn", "port of host 1")]
    [InlineData($"postgres://vpn:{Password}@pg-a:70000/vpn", "port of host 1")]
    [InlineData("postgres://vpn:pa/ss@pg-a:5432/vpn", "port of host 1")] // an unencoded '/' ends the authority early
    [InlineData($"postgres://vpn:{Password}@/vpn?host=a,b,c&port=1,2", "3 hosts")]
    [InlineData($"postgres://vpn:{Password}@pg-a/vpn?target_session_attrs=leader", "target_session_attrs")]
    [InlineData($"postgres://vpn:{Password}@pg-a/vpn?sslmode=sometimes", "sslmode")]
    [InlineData($"postgres://vpn:{Password}@pg-a/vpn?connect_timeout=soon", "connect_timeout")]
    [InlineData($"postgres://vpn:{Password}@pg-a/vpn?no_such_setting=1", "no_such_setting")]
    [InlineData($"postgres://vpn:{Password}@[::1/vpn", "IPv6")]
    [InlineData($"Host=pg;Password={Password};Bogus Key=1", "Npgsql connection string")]
    public void BadInput_ClearErrorWithoutThePassword(string value, string expected)
    {
        var e = Assert.Throws<FormatException>(() => DatabaseUrl.ToConnectionString(value));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("pa/ss", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EntryOptions_BadUrl_ReportsTheReasonNotTheValue()
    {
        var (_, errors) = OptionsLoading.Load(EntryOptions.Load, [("DATABASE_URL", $"postgres://vpn:{Password}@pg-a:5432,pg-b:x/vpn")]);

        var error = Assert.Single(errors);
        Assert.Contains("port of host 2", error, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, error, StringComparison.Ordinal);
    }

    [Fact]
    public void PoolSettings_Defaults_AppliedToTheConnectionString()
    {
        var (options, errors) = OptionsLoading.Load(EntryOptions.Load, [("DATABASE_URL", "postgres://vpn@pg-a:5432,pg-b:5432/vpn")]);

        Assert.Empty(errors);
        var b = new NpgsqlConnectionStringBuilder(options.DatabaseConnectionString);
        Assert.Equal(40, b.MaxPoolSize);
        Assert.Equal(5, b.Timeout);
        Assert.Equal(45, options.DatabasePool.Required);
        Assert.True(options.DatabasePool.CheckBudget);
    }

    [Fact]
    public void PoolSettings_UrlsOwnPoolSizeKept_UnlessTheSettingSaysOtherwise()
    {
        var (own, _) = OptionsLoading.Load(EntryOptions.Load, [("DATABASE_URL", "Host=db;Username=vpn;Maximum Pool Size=100;Timeout=15")]);
        var (set, errors) = OptionsLoading.Load(EntryOptions.Load, [("DATABASE_URL", "Host=db;Username=vpn;Maximum Pool Size=100"),
            ("APP_DB_POOL_SIZE", "12"), ("APP_DB_CONNECT_TIMEOUT_SECS", "2"), ("APP_ENTRY_REPLICAS", "4"), ("APP_DB_RESERVED_CONNECTIONS", "10")]);

        Assert.Empty(errors);
        Assert.Equal(100, new NpgsqlConnectionStringBuilder(own.DatabaseConnectionString).MaxPoolSize);
        Assert.Equal(15, new NpgsqlConnectionStringBuilder(own.DatabaseConnectionString).Timeout);
        Assert.Equal(12, new NpgsqlConnectionStringBuilder(set.DatabaseConnectionString).MaxPoolSize);
        Assert.Equal(2, new NpgsqlConnectionStringBuilder(set.DatabaseConnectionString).Timeout);
        Assert.Equal(58, set.DatabasePool.Required);
    }

    [Theory]
    [InlineData("APP_DB_POOL_SIZE", "0")]
    [InlineData("APP_DB_POOL_SIZE", "many")]
    [InlineData("APP_ENTRY_REPLICAS", "0")]
    [InlineData("APP_DB_RESERVED_CONNECTIONS", "-1")]
    [InlineData("APP_DB_CONNECT_TIMEOUT_SECS", "0")]
    [InlineData("APP_DB_CHECK_BUDGET", "perhaps")]
    public void PoolSettings_BadValue_Refused(string name, string value)
    {
        var (_, errors) = OptionsLoading.Load(EntryOptions.Load, [("DATABASE_URL", "postgres://vpn@db/vpn"), (name, value)]);
        Assert.Contains(errors, e => e.Contains(name, StringComparison.Ordinal));
    }
}
