namespace Vpn.Entry.Tests.Privacy;

/// <summary>How a person's identifier appears in logs per APP_LOG_REDACTION_MODE, through the real redaction registration.</summary>
public sealed class LogIdentifiersTests
{
    private static readonly string KeyA = Convert.ToBase64String([.. Enumerable.Range(0, 32).Select(i => (byte)i)]);
    private static readonly string KeyB = Convert.ToBase64String([.. Enumerable.Range(100, 32).Select(i => (byte)i)]);

    private static LogIdentifiers Build(LogRedactionMode mode, string? key = null)
    {
        var services = new ServiceCollection();
        services.AddLogRedaction(new PrivacyOptions { LogRedaction = mode, RedactionKey = key });
        // LogIdentifiers keeps its redactor; the provider is not needed after this.
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true })
            .GetRequiredService<LogIdentifiers>();
    }

    private static IEnumerable<string> Windows(string id, int length = 8) =>
        Enumerable.Range(0, id.Length - length + 1).Select(i => id.Substring(i, length));

    [Fact]
    public void Off_ReturnsIdUnchanged()
    {
        var identifiers = Build(LogRedactionMode.Off);
        var id = Guid.NewGuid();

        Assert.Equal(id.ToString(), identifiers.Of(id));
        Assert.Equal("plan-basic", identifiers.Of("plan-basic"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")]
    public void Partial_HidesIdAndEveryEightCharPiece(string? key)
    {
        var identifiers = Build(LogRedactionMode.Partial, key);
        for (var i = 0; i < 50; i++)
        {
            var id = Guid.NewGuid().ToString();
            var shown = identifiers.Of(id);

            Assert.False(string.IsNullOrEmpty(shown));
            Assert.NotEqual("[redacted]", shown);
            Assert.DoesNotContain(id, shown, StringComparison.OrdinalIgnoreCase);
            foreach (var piece in Windows(id))
            {
                Assert.DoesNotContain(piece, shown, StringComparison.OrdinalIgnoreCase);
            }
        }
        // Not just GUIDs: any identifier (e.g. a token id) is hidden too.
        Assert.DoesNotContain("jti-0123456789", identifiers.Of("jti-0123456789"), StringComparison.Ordinal);
    }

    [Fact]
    public void Partial_StableWithinProvider_DistinctPerId()
    {
        var identifiers = Build(LogRedactionMode.Partial);
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();

        Assert.Equal(identifiers.Of(a), identifiers.Of(a));
        Assert.Equal(identifiers.Of(a), identifiers.Of(a.ToString()));
        Assert.NotEqual(identifiers.Of(a), identifiers.Of(b));
        var many = Enumerable.Range(0, 1000).Select(_ => identifiers.Of(Guid.NewGuid())).ToList();
        Assert.Equal(many.Count, many.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Partial_ConfiguredKey_SameAcrossProviders_DifferentKeyDiffers()
    {
        var id = Guid.NewGuid();

        var first = Build(LogRedactionMode.Partial, KeyA).Of(id);
        var second = Build(LogRedactionMode.Partial, KeyA).Of(id);
        var otherKey = Build(LogRedactionMode.Partial, KeyB).Of(id);

        Assert.Equal(first, second);
        Assert.NotEqual(first, otherKey);
    }

    [Fact]
    public void Partial_NoKey_RandomPerProvider()
    {
        // No built-in fallback key: without APP_LOG_REDACTION_KEY, pseudonyms of two processes do not correlate.
        var id = Guid.NewGuid();

        Assert.NotEqual(Build(LogRedactionMode.Partial).Of(id), Build(LogRedactionMode.Partial).Of(id));
        Assert.NotEqual(Build(LogRedactionMode.Partial, KeyA).Of(id), Build(LogRedactionMode.Partial).Of(id));
    }

    [Fact]
    public void Strict_EveryIdRedacted()
    {
        var identifiers = Build(LogRedactionMode.Strict);

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("[redacted]", identifiers.Of(Guid.NewGuid()));
        }
        Assert.Equal("[redacted]", identifiers.Of("plan-basic"));
        Assert.Equal("[redacted]", identifiers.Of("x"));
    }

    [Theory]
    [InlineData(LogRedactionMode.Off)]
    [InlineData(LogRedactionMode.Partial)]
    [InlineData(LogRedactionMode.Strict)]
    public void NullOrEmpty_Dash(LogRedactionMode mode)
    {
        var identifiers = Build(mode);

        Assert.Equal("-", identifiers.Of((string?)null));
        Assert.Equal("-", identifiers.Of(string.Empty));
    }
}
