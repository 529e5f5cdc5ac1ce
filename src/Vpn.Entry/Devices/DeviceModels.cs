using Vpn.Domain.WireGuard;

namespace Vpn.Entry.Devices;

public sealed record Device(Guid Id, Guid CustomerId, string Name, WireGuardKey PublicKey, DateTimeOffset CreatedAt);

public enum DeviceCreateOutcome
{
    Created,
    KeyInUse,
    LimitReached,
}

public sealed record DeviceCreateResult(DeviceCreateOutcome Outcome, Device? Device);

public interface IDeviceStore
{
    /// <summary>
    /// Registers a device unless the key is taken (by anyone) or the customer already has <paramref name="maxDevices"/>;
    /// the limit holds under concurrent registrations.
    /// </summary>
    Task<DeviceCreateResult> CreateAsync(Device device, int maxDevices, CancellationToken cancellationToken);

    Task<IReadOnlyList<Device>> ListAsync(Guid customerId, CancellationToken cancellationToken);

    /// <summary>The customer's device, or null when it does not exist or belongs to someone else.</summary>
    Task<Device?> GetAsync(Guid customerId, Guid deviceId, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes the device and terminates its live session in one transaction; returns whether it existed
    /// and the session that must now be removed from its node.
    /// </summary>
    Task<(bool Deleted, Sessions.SessionRecord? TerminatedSession)> DeleteAsync(Guid customerId, Guid deviceId, DateTimeOffset now, CancellationToken cancellationToken);
}
