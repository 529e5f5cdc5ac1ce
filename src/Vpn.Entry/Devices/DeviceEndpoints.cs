using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.HttpResults;
using Vpn.Domain.Subscriptions;
using Vpn.Entry.Nodes;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Devices;

public sealed record RegisterDeviceRequest([property: Required] string? Name, [property: Required] string? PublicKey);

public sealed record DeviceView(Guid Id, string Name, string PublicKey, DateTimeOffset CreatedAt)
{
    public static DeviceView From(Device d) => new(d.Id, d.Name, d.PublicKey.ToBase64(), d.CreatedAt);
}

public sealed record DeviceList(IReadOnlyList<DeviceView> Items);

public static class DeviceEndpoints
{
    public static IEndpointRouteBuilder MapDeviceEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/devices").RequireCustomer().WithTags("Devices");

        group.MapPost("/", async Task<Created<DeviceView>> (RegisterDeviceRequest request, HttpContext http, IDeviceStore devices,
            IPlanStore plans, INodeStore nodes, TimeProvider time, CancellationToken ct) =>
        {
            var name = Validation.RequireText(request.Name, "name", 64);
            var key = Validation.RequirePublicKey(request.PublicKey);
            // wireguard-go silently ignores a peer equal to its own key: such a device could never connect there.
            if (await nodes.IsNodePublicKeyAsync(key.ToBase64(), ct))
            {
                throw ApiProblemException.BadRequest("'public_key' is a VPN node's own key, not a device's.", ErrorCodes.InvalidPublicKey);
            }
            var customerId = http.CustomerId();
            var subscription = await plans.GetSubscriptionAsync(customerId, ct);
            if (Entitlements.Check(subscription?.ToEntitlement()).Denial is { } denial)
            {
                throw EntitlementProblems.For(denial).ToException();
            }
            // Allowed implies a subscription.
            var result = await devices.CreateAsync(new Device(Guid.CreateVersion7(), customerId, name, key, time.GetUtcNow()),
                subscription!.MaxDevices, ct);
            return result.Outcome switch
            {
                DeviceCreateOutcome.Created => TypedResults.Created($"/v1/devices/{result.Device!.Id}", DeviceView.From(result.Device)),
                DeviceCreateOutcome.KeyInUse => throw new ApiProblemException(StatusCodes.Status409Conflict, ErrorCodes.DeviceKeyInUse,
                    "This WireGuard public key is already registered."),
                _ => throw ApiProblemException.Forbidden(ErrorCodes.DeviceLimitReached, "The plan's device limit is reached."),
            };
        });

        group.MapGet("/", async Task<Ok<DeviceList>> (HttpContext http, IDeviceStore devices, CancellationToken ct) =>
            TypedResults.Ok(new DeviceList([.. (await devices.ListAsync(http.CustomerId(), ct)).Select(DeviceView.From)])));

        group.MapDelete("/{id}", async Task<NoContent> (string id, HttpContext http, IDeviceStore devices, SessionService sessions,
            TimeProvider time, CancellationToken ct) =>
        {
            // A malformed id names no device of this customer: the same 404 as an unknown or foreign one.
            if (!Guid.TryParseExact(id, "D", out var deviceId))
            {
                throw DeviceNotFound();
            }
            var (deleted, terminated) = await devices.DeleteAsync(http.CustomerId(), deviceId, time.GetUtcNow(), ct);
            if (!deleted)
            {
                throw DeviceNotFound();
            }
            if (terminated is not null)
            {
                await sessions.RemovePeerAsync(terminated.NodeId, terminated.Id);
            }
            return TypedResults.NoContent();
        });

        return app;
    }

    private static ApiProblemException DeviceNotFound() => ApiProblemException.NotFound(ErrorCodes.DeviceNotFound, "No such device.");
}
