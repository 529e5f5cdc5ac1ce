using Microsoft.Extensions.Hosting;

namespace Vpn.Entry.Tests.Privacy;

internal static class BackgroundCleanup
{
    /// <summary>
    /// For <see cref="Infrastructure.TestStack.StartAsync"/>'s configureServices: entry without its background retention
    /// pass (which would run 5 s after start), so only the passes a test runs itself touch the data and the status.
    /// Stopping the hosted service after start instead can stop the whole host (a BackgroundService cancelled before it
    /// ran counts as failed).
    /// </summary>
    public static void Remove(IServiceCollection services)
    {
        var loop = services.Where(d => d.ServiceType == typeof(IHostedService) && !d.IsKeyedService
            && d.ImplementationFactory?.GetType().GenericTypeArguments is [_, var type] && type == typeof(RetentionCleanupService)).ToList();
        if (loop.Count != 1)
        {
            throw new InvalidOperationException($"expected one hosted RetentionCleanupService registration, found {loop.Count}");
        }
        services.Remove(loop[0]);
    }
}
