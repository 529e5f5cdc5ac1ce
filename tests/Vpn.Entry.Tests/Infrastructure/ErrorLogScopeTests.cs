using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

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

        var failure = await Assert.ThrowsAsync<Xunit.Sdk.XunitException>(async () => await stack.DisposeAsync());

        Assert.Contains("1 unexpected error(s) logged", failure.Message, StringComparison.Ordinal);
        Assert.Contains("Vpn.Entry.Sessions.SessionService", failure.Message, StringComparison.Ordinal);
        Assert.Contains("Start failed for a test", failure.Message, StringComparison.Ordinal);
        Assert.Contains("InvalidOperationException: boom", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ErrorFromCore_FailsTheTestAtDispose()
    {
        var stack = await TestStack.StartAsync(StoreKind.InMemory);
        var coreLogger = stack.CoreServices().GetRequiredService<ILoggerFactory>().CreateLogger("Vpn.Core.Control.VpnControlService");
        coreLogger.LogCritical("Dataplane lost");

        var failure = await Assert.ThrowsAsync<Xunit.Sdk.XunitException>(async () => await stack.DisposeAsync());

        Assert.Contains("[Critical] Vpn.Core.Control.VpnControlService", failure.Message, StringComparison.Ordinal);
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

        var failure = await Assert.ThrowsAsync<Xunit.Sdk.XunitException>(async () => await stack.DisposeAsync());
        Assert.Contains("1 unexpected error(s) logged", failure.Message, StringComparison.Ordinal);
        Assert.Contains("another failure", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("an expected failure", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoErrors_DisposeSucceeds()
    {
        var stack = await TestStack.StartAsync(StoreKind.InMemory);
        await stack.SeedCustomerAsync();

        await stack.DisposeAsync();

        Assert.Empty(stack.Errors.Errors);
    }
}
