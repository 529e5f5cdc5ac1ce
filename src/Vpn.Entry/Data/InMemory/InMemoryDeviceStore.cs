using Vpn.Domain.Sessions;
using Vpn.Entry.Devices;

namespace Vpn.Entry.Data.InMemory;

public sealed class InMemoryDeviceStore(InMemoryDatabase db) : IDeviceStore
{
    public Task<DeviceCreateResult> CreateAsync(Device device, int maxDevices, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(device);
        lock (db.Gate)
        {
            if (db.Devices.Values.Any(d => d.PublicKey == device.PublicKey))
            {
                return Task.FromResult(new DeviceCreateResult(DeviceCreateOutcome.KeyInUse, null));
            }
            if (db.Devices.Values.Count(d => d.CustomerId == device.CustomerId) >= maxDevices)
            {
                return Task.FromResult(new DeviceCreateResult(DeviceCreateOutcome.LimitReached, null));
            }
            db.Devices[device.Id] = device;
            return Task.FromResult(new DeviceCreateResult(DeviceCreateOutcome.Created, device));
        }
    }

    public Task<IReadOnlyList<Device>> ListAsync(Guid customerId, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult<IReadOnlyList<Device>>(
                [.. db.Devices.Values.Where(d => d.CustomerId == customerId).OrderBy(d => d.CreatedAt).ThenBy(d => d.Id)]);
        }
    }

    public Task<Device?> GetAsync(Guid customerId, Guid deviceId, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult(db.Devices.TryGetValue(deviceId, out var d) && d.CustomerId == customerId ? d : null);
        }
    }

    public Task<(bool Deleted, SessionRecord? TerminatedSession)> DeleteAsync(Guid customerId, Guid deviceId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (!db.Devices.TryGetValue(deviceId, out var device) || device.CustomerId != customerId)
            {
                return Task.FromResult<(bool, SessionRecord?)>((false, null));
            }
            db.Devices.Remove(deviceId);
            SessionRecord? terminated = null;
            foreach (var session in db.Sessions.Values.Where(s => s.DeviceId == deviceId && InMemoryDatabase.IsLive(s)).ToList())
            {
                terminated = session;
                db.Sessions[session.Id] = session with { State = SessionState.Terminated, DeviceId = null, EndedAt = now, TerminateReason = "device_deleted" };
            }
            return Task.FromResult((true, terminated));
        }
    }
}
