using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Entry.Health;

namespace Vpn.Entry.Tests.Health;

/// <summary>The runner's rules (concurrency, deadlines, failures) and the sign-in check, without a stack.</summary>
public sealed class ReadinessProbeTests
{
    [Fact]
    public async Task Probe_AllOk_ReadyInRegistrationOrder()
    {
        var probe = Probe(new TestCheck("b", _ => Task.FromResult(ReadinessCheckResult.Pass("fine"))),
            new TestCheck("a", _ => Task.FromResult(ReadinessCheckResult.Pass("also fine"))));

        var report = await probe.RunAsync(TestContext.Current.CancellationToken);

        Assert.True(report.Ready);
        Assert.Equal([new ReadinessCheckReport("b", true, "fine"), new ReadinessCheckReport("a", true, "also fine")], report.Checks);
    }

    [Fact]
    public async Task Probe_ChecksRunConcurrently()
    {
        // Each check finishes only once the other has started: run one after the other, both would time out.
        var aStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var probe = Probe(
            new TestCheck("a", async ct => { aStarted.SetResult(); await bStarted.Task.WaitAsync(ct); return ReadinessCheckResult.Pass("a"); }),
            new TestCheck("b", async ct => { bStarted.SetResult(); await aStarted.Task.WaitAsync(ct); return ReadinessCheckResult.Pass("b"); }));

        var report = await probe.RunAsync(TestContext.Current.CancellationToken);

        Assert.True(report.Ready, string.Join("; ", report.Checks));
    }

    [Fact]
    public async Task Probe_CheckPastItsDeadline_NotOkOthersUnaffected()
    {
        var probe = Probe(
            new TestCheck("waits", ct => Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => ReadinessCheckResult.Pass("late"), TaskScheduler.Default), TimeSpan.FromMilliseconds(100)),
            // Ignores its token altogether: the answer still does not wait for it.
            new TestCheck("deaf", async _ => { await Task.Delay(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken); return ReadinessCheckResult.Pass("late"); }, TimeSpan.FromMilliseconds(100)),
            // Blocks its thread before any await.
            new TestCheck("blocking", _ => { Thread.Sleep(1000); return Task.FromResult(ReadinessCheckResult.Pass("late")); }, TimeSpan.FromMilliseconds(100)),
            new TestCheck("quick", _ => Task.FromResult(ReadinessCheckResult.Pass("fine"))));
        var clock = Stopwatch.StartNew();

        var report = await probe.RunAsync(TestContext.Current.CancellationToken);

        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(900), $"took {clock.Elapsed}");
        Assert.False(report.Ready);
        Assert.Equal(
            [new("waits", false, "no answer within 100 ms"), new("deaf", false, "no answer within 100 ms"), new("blocking", false, "no answer within 100 ms"),
                new ReadinessCheckReport("quick", true, "fine")],
            report.Checks);
    }

    [Fact]
    public async Task Probe_CheckThrows_NotOkWithTheExceptionTypeOnly()
    {
        var probe = Probe(
            new TestCheck("throws", async _ => { await Task.Yield(); throw new InvalidOperationException("Password=hunter2 Host=db.internal"); }),
            new TestCheck("throws-at-once", _ => throw new FormatException("secret")));

        var report = await probe.RunAsync(TestContext.Current.CancellationToken);

        Assert.Equal(
            [new("throws", false, "check failed (InvalidOperationException)"), new ReadinessCheckReport("throws-at-once", false, "check failed (FormatException)")],
            report.Checks);
    }

    [Fact]
    public async Task Probe_CheckThrowsItsOwnTimeout_CheckFailedNotPastItsDeadline()
    {
        var probe = Probe(new TestCheck("own-timeout", async _ => { await Task.Yield(); throw new TimeoutException("upstream"); }, TimeSpan.FromSeconds(5)));

        var report = await probe.RunAsync(TestContext.Current.CancellationToken);

        Assert.Equal([new ReadinessCheckReport("own-timeout", false, "check failed (TimeoutException)")], report.Checks);
    }

    [Fact]
    public async Task SignIn_DevelopmentWithoutGoogleClient_OkSaysNotConfigured()
    {
        var result = await new SignInReadinessCheck(Options("development", configured: false)).RunAsync(TestContext.Current.CancellationToken);

        Assert.True(result.Ok);
        Assert.Contains("not configured", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignIn_ProductionWithoutGoogleClient_NotOk()
    {
        var result = await new SignInReadinessCheck(Options("production", configured: false)).RunAsync(TestContext.Current.CancellationToken);

        Assert.False(result.Ok);
        Assert.Contains("GOOGLE_CLIENT_ID", result.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("development")]
    [InlineData("production")]
    public async Task SignIn_GoogleClientConfigured_OkWithoutSecrets(string environment)
    {
        var result = await new SignInReadinessCheck(Options(environment, configured: true)).RunAsync(TestContext.Current.CancellationToken);

        Assert.True(result.Ok);
        Assert.Equal("Google OIDC client configured (issuer accounts.google.com)", result.Detail);
    }

    private static ReadinessProbe Probe(params IReadinessCheck[] checks) => new(checks, TimeProvider.System, NullLogger<ReadinessProbe>.Instance);

    private static EntryOptions Options(string environment, bool configured) => new()
    {
        Environment = environment,
        AccessTokens = new AccessTokenOptions { Keys = [], ActiveKid = "k" },
        Oidc = configured ? new OidcOptions { ClientId = "client-id-123", ClientSecret = "client-secret-456" } : new OidcOptions(),
        RateLimits = new RateLimitOptions(),
    };

    private sealed class TestCheck(string name, Func<CancellationToken, Task<ReadinessCheckResult>> run, TimeSpan? timeout = null) : IReadinessCheck
    {
        public string Name => name;

        public TimeSpan Timeout => timeout ?? ReadinessProbe.DefaultTimeout;

        public Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken) => run(cancellationToken);
    }
}
