namespace Vpn.Entry.Tests.Infrastructure;

/// <summary>The error-log scope of <see cref="TestStack"/> can fail a test: an undeclared error is reported, a declared one is not.</summary>
public sealed class ErrorLogScopeTests
{
    [Fact]
    public async Task UndeclaredError_FailsTheTestAtDispose()
    {
        var stack = await TestStack.StartAsync(StoreKind.InMemory);
        stack.EntryServices.GetRequiredService<ILoggerFactory>().CreateLogger("Vpn.Entry.Sessions.SessionService")
            .LogError(new InvalidOperationException("boom"), "Start failed for {Reason}", "a test");

        await AssertDisposeReportsAsync(stack,
            "1 unexpected error(s) logged", "[Error] Vpn.Entry.Sessions.SessionService", "Start failed for a test", "InvalidOperationException: boom");
    }

    [Fact]
    public async Task ErrorFromCore_FailsTheTestAtDispose()
    {
        var stack = await TestStack.StartAsync(StoreKind.InMemory);
        stack.CoreServices().GetRequiredService<ILoggerFactory>().CreateLogger("Vpn.Core.Control.VpnControlService").LogCritical("Dataplane lost");

        await AssertDisposeReportsAsync(stack, "[Critical] Vpn.Core.Control.VpnControlService", "Dataplane lost");
    }

    [Fact]
    public async Task DeclaredError_Allowed_OthersStillReported()
    {
        var stack = await TestStack.StartAsync(StoreKind.InMemory);
        var logger = stack.EntryServices.GetRequiredService<ILoggerFactory>().CreateLogger("Vpn.Entry.Nodes.CoreClients");
        stack.ExpectErrors(e => e.Category == "Vpn.Entry.Nodes.CoreClients" && e.Message.Contains("expected", StringComparison.Ordinal));
        logger.LogError("an expected failure");
        logger.LogWarning("a warning is never a failure");
        Assert.Single(stack.Errors.Errors);
        Assert.Empty(stack.Errors.Unexpected);

        logger.LogError("another failure");

        var message = await AssertDisposeReportsAsync(stack, "1 unexpected error(s) logged", "another failure");
        Assert.DoesNotContain("an expected failure", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoErrors_DisposeSucceeds()
    {
        var stack = await TestStack.StartAsync(StoreKind.InMemory);
        await stack.SeedCustomerAsync();

        await stack.DisposeAsync();

        Assert.Empty(stack.Errors.Errors);
    }

    /// <summary>Disposing the stack fails the test, and the failure names every one of <paramref name="expected"/>; returns its message.</summary>
    private static async Task<string> AssertDisposeReportsAsync(TestStack stack, params string[] expected)
    {
        var failure = await Assert.ThrowsAsync<Xunit.Sdk.XunitException>(async () => await stack.DisposeAsync());
        foreach (var text in expected)
        {
            Assert.Contains(text, failure.Message, StringComparison.Ordinal);
        }
        return failure.Message;
    }
}
