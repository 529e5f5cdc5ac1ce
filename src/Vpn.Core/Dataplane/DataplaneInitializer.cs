namespace Vpn.Core.Dataplane;

/// <summary>Initializes the dataplane before the gRPC endpoint serves, so the first Connect finds a configured device.</summary>
public sealed class DataplaneInitializer(IDataplane dataplane) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => dataplane.InitializeAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
