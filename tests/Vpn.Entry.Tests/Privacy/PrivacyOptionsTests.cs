namespace Vpn.Entry.Tests.Privacy;

/// <summary>
/// APP_SESSION_RETENTION_DAYS, APP_AUDIT_RETENTION_DAYS, APP_PRIVACY_CLEANUP_SECS, APP_LOG_REDACTION_MODE and
/// APP_LOG_REDACTION_KEY(_FILE), read through <see cref="EntryOptions.Load"/> as start-up reads them.
/// </summary>
public sealed class PrivacyOptionsTests
{
    private const string ProductionMessage = "APP_LOG_REDACTION_MODE must be strict in production.";

    // base64 of 32 bytes 0x00..0x1f.
    private static readonly string GoodKey = Convert.ToBase64String([.. Enumerable.Range(0, 32).Select(i => (byte)i)]);

    private static (EntryOptions Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] settings) =>
        OptionsLoading.Load(EntryOptions.Load, settings);

    private static (EntryOptions Options, IReadOnlyList<string> Errors) LoadProduction(params (string Key, string Value)[] settings) =>
        Load([("APP_ENV", "production"), .. settings]);

    private static IEnumerable<string> RedactionErrors(IReadOnlyList<string> errors) =>
        errors.Where(e => e.Contains("APP_LOG_REDACTION", StringComparison.Ordinal));

    [Fact]
    public void Development_Unset_Defaults()
    {
        var (options, errors) = Load();

        Assert.Empty(errors);
        var privacy = options.Privacy;
        Assert.Equal(TimeSpan.FromDays(7), privacy.SessionRetention);
        Assert.Equal(TimeSpan.FromDays(90), privacy.AuditRetention);
        Assert.Equal(TimeSpan.FromSeconds(3600), privacy.CleanupInterval);
        Assert.Equal(LogRedactionMode.Partial, privacy.LogRedaction);
        Assert.Null(privacy.RedactionKey);
    }

    [Fact]
    public void Production_Unset_DefaultsToStrict()
    {
        var (options, errors) = LoadProduction();

        Assert.Equal(LogRedactionMode.Strict, options.Privacy.LogRedaction);
        // Production misses other settings here; none of the problems is about redaction.
        Assert.Empty(RedactionErrors(errors));
    }

    [Theory]
    [InlineData("partial")]
    [InlineData("off")]
    [InlineData("OFF")]
    [InlineData("Partial")]
    public void Production_NotStrict_Refused(string mode)
    {
        var (_, errors) = LoadProduction(("APP_LOG_REDACTION_MODE", mode));

        Assert.Equal([ProductionMessage], RedactionErrors(errors));
    }

    [Theory]
    [InlineData("strict")]
    [InlineData("STRICT")]
    [InlineData("")]
    public void Production_StrictOrEmpty_Accepted(string mode)
    {
        var (options, errors) = LoadProduction(("APP_LOG_REDACTION_MODE", mode));

        Assert.Equal(LogRedactionMode.Strict, options.Privacy.LogRedaction);
        Assert.Empty(RedactionErrors(errors));
    }

    [Theory]
    [InlineData("off", LogRedactionMode.Off)]
    [InlineData("partial", LogRedactionMode.Partial)]
    [InlineData("strict", LogRedactionMode.Strict)]
    [InlineData("Strict", LogRedactionMode.Strict)]
    [InlineData(" off ", LogRedactionMode.Off)]
    [InlineData("", LogRedactionMode.Partial)]
    public void Development_Mode_Parsed(string value, LogRedactionMode expected)
    {
        var (options, errors) = Load(("APP_LOG_REDACTION_MODE", value));

        Assert.Empty(errors);
        Assert.Equal(expected, options.Privacy.LogRedaction);
    }

    [Theory]
    [InlineData("loud")]
    [InlineData("1")]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("off,strict")]
    [InlineData("off,partial")]
    [InlineData("partial, strict")]
    [InlineData("none")]
    public void InvalidMode_Refused_FallsBackToStrict(string value)
    {
        var (options, errors) = Load(("APP_LOG_REDACTION_MODE", value));

        Assert.Equal(["APP_LOG_REDACTION_MODE must be off, partial or strict."], RedactionErrors(errors));
        // Whatever start-up does with the problem, the options never fall back to something weaker.
        Assert.Equal(LogRedactionMode.Strict, options.Privacy.LogRedaction);
    }

    [Fact]
    public void Production_InvalidMode_OneProblem()
    {
        var (_, errors) = LoadProduction(("APP_LOG_REDACTION_MODE", "loud"));

        Assert.Equal(["APP_LOG_REDACTION_MODE must be off, partial or strict."], RedactionErrors(errors));
    }

    [Theory]
    [InlineData("APP_SESSION_RETENTION_DAYS", "-1", "between 0 and 3650")]
    [InlineData("APP_SESSION_RETENTION_DAYS", "3651", "between 0 and 3650")]
    [InlineData("APP_SESSION_RETENTION_DAYS", "7.5", "between 0 and 3650")]
    [InlineData("APP_SESSION_RETENTION_DAYS", "seven", "between 0 and 3650")]
    [InlineData("APP_AUDIT_RETENTION_DAYS", "0", "between 1 and 3650")]
    [InlineData("APP_AUDIT_RETENTION_DAYS", "3651", "between 1 and 3650")]
    [InlineData("APP_PRIVACY_CLEANUP_SECS", "9", "between 10 and 86400")]
    [InlineData("APP_PRIVACY_CLEANUP_SECS", "86401", "between 10 and 86400")]
    public void OutOfRange_Refused(string setting, string value, string range)
    {
        var (_, errors) = Load((setting, value));

        var error = Assert.Single(errors);
        Assert.StartsWith(setting + " ", error, StringComparison.Ordinal);
        Assert.Contains(range, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Bounds_Accepted()
    {
        var (low, lowErrors) = Load(("APP_SESSION_RETENTION_DAYS", "0"), ("APP_AUDIT_RETENTION_DAYS", "1"), ("APP_PRIVACY_CLEANUP_SECS", "10"));
        var (high, highErrors) = Load(("APP_SESSION_RETENTION_DAYS", "3650"), ("APP_AUDIT_RETENTION_DAYS", "3650"), ("APP_PRIVACY_CLEANUP_SECS", "86400"));

        Assert.Empty(lowErrors);
        Assert.Equal(TimeSpan.Zero, low.Privacy.SessionRetention);
        Assert.Equal(TimeSpan.FromDays(1), low.Privacy.AuditRetention);
        Assert.Equal(TimeSpan.FromSeconds(10), low.Privacy.CleanupInterval);
        Assert.Empty(highErrors);
        Assert.Equal(TimeSpan.FromDays(3650), high.Privacy.SessionRetention);
        Assert.Equal(TimeSpan.FromDays(3650), high.Privacy.AuditRetention);
        Assert.Equal(TimeSpan.FromDays(1), high.Privacy.CleanupInterval);
    }

    [Fact]
    public void SeveralProblems_AllReportedAtOnce()
    {
        var (_, errors) = Load(("APP_SESSION_RETENTION_DAYS", "-5"), ("APP_AUDIT_RETENTION_DAYS", "0"), ("APP_PRIVACY_CLEANUP_SECS", "1"),
            ("APP_LOG_REDACTION_MODE", "loud"), ("APP_LOG_REDACTION_KEY", "c2hvcnQ="));

        Assert.Equal(5, errors.Count);
    }

    [Theory]
    [InlineData("c2hvcnQ=")] // "short"
    [InlineData("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==")] // 31 bytes
    [InlineData("this is not base64 at all, secret-ish!")]
    [InlineData("hunter2hunter2hunter2hunter2hunter2hunter2hunter2")] // long, but not base64
    public void BadRedactionKey_RefusedWithoutEchoingTheValue(string key)
    {
        var (options, errors) = Load(("APP_LOG_REDACTION_KEY", key));

        var error = Assert.Single(errors);
        Assert.Equal("APP_LOG_REDACTION_KEY must be the base64 of at least 32 bytes.", error);
        Assert.DoesNotContain(key, error, StringComparison.Ordinal);
        Assert.Null(options.Privacy.RedactionKey);
    }

    [Fact]
    public void RedactionKey_32Bytes_Accepted()
    {
        var (options, errors) = Load(("APP_LOG_REDACTION_KEY", GoodKey));

        Assert.Empty(errors);
        Assert.Equal(GoodKey, options.Privacy.RedactionKey);
    }

    [Fact]
    public void RedactionKey_FromFile_TrimmedAndPreferred()
    {
        var directory = Directory.CreateTempSubdirectory("privacy-options-");
        try
        {
            var path = Path.Combine(directory.FullName, "key");
            File.WriteAllText(path, GoodKey + "\n");
            var (options, errors) = Load(("APP_LOG_REDACTION_KEY_FILE", path), ("APP_LOG_REDACTION_KEY", "c2hvcnQ="));

            Assert.Empty(errors);
            Assert.Equal(GoodKey, options.Privacy.RedactionKey);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void RedactionKey_FromFileTooShort_RefusedWithoutEchoingTheValue()
    {
        var directory = Directory.CreateTempSubdirectory("privacy-options-");
        try
        {
            var path = Path.Combine(directory.FullName, "key");
            File.WriteAllText(path, "c2hvcnQ=\n");
            var (options, errors) = Load(("APP_LOG_REDACTION_KEY_FILE", path));

            var error = Assert.Single(errors);
            Assert.Contains("APP_LOG_REDACTION_KEY", error, StringComparison.Ordinal);
            Assert.DoesNotContain("c2hvcnQ", error, StringComparison.Ordinal);
            Assert.Null(options.Privacy.RedactionKey);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void RedactionKey_MissingFile_Refused()
    {
        var path = Path.Combine(Path.GetTempPath(), "no-such-dir-" + Guid.NewGuid(), "key");
        var (_, errors) = Load(("APP_LOG_REDACTION_KEY_FILE", path));

        var error = Assert.Single(errors);
        Assert.StartsWith("APP_LOG_REDACTION_KEY_FILE could not be read", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Production_StrictWithRetentionSettings_NoPrivacyProblems()
    {
        var (options, errors) = LoadProduction(("APP_LOG_REDACTION_MODE", "strict"), ("APP_SESSION_RETENTION_DAYS", "3"),
            ("APP_AUDIT_RETENTION_DAYS", "30"), ("APP_PRIVACY_CLEANUP_SECS", "600"), ("APP_LOG_REDACTION_KEY", GoodKey));

        Assert.DoesNotContain(errors, e => e.Contains("APP_LOG_REDACTION", StringComparison.Ordinal) || e.Contains("RETENTION", StringComparison.Ordinal)
            || e.Contains("APP_PRIVACY", StringComparison.Ordinal));
        Assert.Equal(TimeSpan.FromDays(3), options.Privacy.SessionRetention);
        Assert.Equal(TimeSpan.FromDays(30), options.Privacy.AuditRetention);
        Assert.Equal(TimeSpan.FromMinutes(10), options.Privacy.CleanupInterval);
        Assert.Equal(GoodKey, options.Privacy.RedactionKey);
    }
}
