using System.Text.Json.Nodes;
using Vpn.Cli.Admin;

namespace Vpn.Cli.Tests.Output;

public class UsageTextTests
{
    [Theory]
    [InlineData(0L, "0 B")]
    [InlineData(1023L, "1023 B")]
    [InlineData(1024L, "1.0 KiB")]
    [InlineData(957_904L, "935.5 KiB")]
    [InlineData(10_737_418_240L, "10.0 GiB")]
    [InlineData(1L << 50, "1.0 PiB")]
    public void Bytes_in_binary_units(long bytes, string text) => Assert.Equal(text, Usage.Bytes(bytes));

    [Fact]
    public void Describe_with_and_without_a_quota()
    {
        var metered = JsonNode.Parse("""{"used_bytes": 1536, "limit_bytes": 2048, "period_start": "2027-01-31T00:00:00+00:00", "resets_at": "2027-02-28T00:00:00+00:00"}""");
        var unlimited = JsonNode.Parse("""{"used_bytes": 5, "limit_bytes": null, "period_start": "2027-01-31T00:00:00+00:00", "resets_at": "2027-02-28T00:00:00+00:00"}""");

        Assert.Equal("1.5 KiB of 2.0 KiB this period (resets 2027-02-28T00:00:00+00:00)", Usage.Describe(metered));
        Assert.Equal("5 B this period, no quota (period resets 2027-02-28T00:00:00+00:00)", Usage.Describe(unlimited));
    }
}
