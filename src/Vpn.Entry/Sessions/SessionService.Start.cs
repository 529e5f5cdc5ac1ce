using System.Security.Cryptography;
using Vpn.Domain.Nodes;
using Vpn.Domain.Sessions;
using Vpn.Domain.Subscriptions;
using Vpn.Entry.Nodes;

namespace Vpn.Entry.Sessions;

/// <summary>
/// A session start: a node chosen from the in-memory registry (<see cref="INodeDirectory"/>), then one claim that checks
/// and takes everything at once (<see cref="ISessionStore.ClaimStartAsync"/>), core Connect, activation: two round
/// trips to the store on the way to a session.
/// </summary>
public sealed partial class SessionService
{
    /// <summary>One start; a started session comes with its key's hash, so an idempotent replay can rotate the key later.</summary>
    private async Task<(SessionOutcome Outcome, byte[]? KeyHash)> StartOnceAsync(Guid customerId, StartSessionRequest request,
        CancellationToken cancellationToken)
    {
        if (ReadStart(request, out var deviceId, out var nodeRequest) is { } invalid)
        {
            return (invalid, null);
        }
        // One round trip to the store for the whole claim (entitlement, device, node health and capacity, the customer's
        // slot: claim_session_start), after a choice among the cached nodes; a choice the claim turns down is excluded.
        var replace = request.ReplaceExisting ?? false;
        var sessionKey = RandomNumberGenerator.GetBytes(32);
        var keyHash = SHA256.HashData(sessionKey);
        var excluded = new HashSet<Guid>();
        var reloaded = false;
        for (var attempt = 0; attempt < MaxSelectionAttempts; attempt++)
        {
            var now = time.GetUtcNow();
            var node = await ChooseAsync(nodeRequest, excluded, reloaded, cancellationToken);
            if (node is null && !reloaded)
            {
                // Nothing in the cache: read the registry once (a node registered or made healthy a moment ago).
                reloaded = true;
                node = await ChooseAsync(nodeRequest, excluded, reloaded, cancellationToken);
            }
            if (node is null)
            {
                return (await NoNodeAsync(customerId, deviceId, nodeRequest, replace, excluded, cancellationToken), null);
            }
            var claim = new StartClaim(Guid.CreateVersion7(), customerId, deviceId, node.Id, keyHash, nodeRequest.Region, nodeRequest.CountryCode,
                nodeRequest.CityCode, nodeRequest.Pool, now, replace, now - options.NodeFreshness);
            StartClaimResult claimed;
            try
            {
                claimed = await sessions.ClaimStartAsync(claim, cancellationToken);
            }
            catch (Exception)
            {
                // A commit whose answer was lost (or was cancelled) may have claimed the slot after all: release it (a
                // no-op otherwise), so the customer's retry is not blocked until the sweeper.
                await MarkFailedQuietlyAsync(claim.Id);
                throw;
            }
            directory.ObserveLoad(node.Id, claimed.NodeLive);
            switch (claimed.Outcome)
            {
                case ClaimOutcome.NotEntitled:
                    // The store applied the same rule; should the two ever disagree (a region spelled outside ASCII), the
                    // store's no stands and the region is what it refused.
                    return (new SessionFailure.NotEntitled(Entitlements.Check(claimed.Entitlement, nodeRequest.Region).Denial
                        ?? EntitlementDenial.RegionNotAllowed), null);
                case ClaimOutcome.QuotaExceeded:
                    return (new SessionFailure.QuotaExceeded(claimed.QuotaResetsAt!.Value), null);
                case ClaimOutcome.Conflict:
                    return (new SessionFailure.Conflict(claimed.Claim.ActiveSessionId), null);
                case ClaimOutcome.DeviceGone:
                    return (new SessionFailure.DeviceNotFound(), null);
                case ClaimOutcome.NodeFull or ClaimOutcome.NodeGone or ClaimOutcome.NodeUnfit:
                    excluded.Add(node.Id);
                    directory.MarkChanged();
                    continue;
            }
            var session = new NewSession(claim.Id, customerId, deviceId, claimed.DevicePublicKey, node.Id, keyHash, nodeRequest.Region,
                nodeRequest.CountryCode, nodeRequest.CityCode, nodeRequest.Pool, now);
            var (connected, failure) = await ConnectAsync(node, session, claimed.Claim, cancellationToken);
            if (connected is null)
            {
                return (failure!, null);
            }
            return (ToView(session.Id, Base64Url(sessionKey), SessionState.Active, session.CreatedAt, deviceId, node, connected), session.KeyHash);
        }
        return (await NoNodeAsync(customerId, deviceId, nodeRequest, replace, excluded, cancellationToken), null);
    }

    /// <summary>
    /// The policy's choice among the cached nodes of the request's region not in <paramref name="excluded"/>; null when none.
    /// <paramref name="reload"/>: read the registry from the store first.
    /// </summary>
    private async Task<Node?> ChooseAsync(NodeRequest request, HashSet<Guid> excluded, bool reload, CancellationToken cancellationToken)
    {
        var snapshot = reload ? await directory.ReloadAsync(cancellationToken) : await directory.GetAsync(cancellationToken);
        var choice = SelectShedding(snapshot.InRegion(request.Region).Where(e => !excluded.Contains(e.Node.Id)).ToList(), e => e.Node.Id,
            e => e.Describe(), request);
        return choice.Node?.Node;
    }

    /// <summary>
    /// No node took the start: the answer the customer would have got before any node was looked at, if there is one
    /// (not entitled, no such device, a live session without replace_existing), else no_nodes with the rejections of
    /// every node (read from the store: this is the slow path) and the nodes tried counted as at capacity.
    /// </summary>
    private async Task<SessionFailure> NoNodeAsync(Guid customerId, Guid deviceId, NodeRequest request, bool replace, HashSet<Guid> excluded,
        CancellationToken cancellationToken)
    {
        var subscription = await plans.GetSubscriptionAsync(customerId, cancellationToken);
        if (Entitlements.Check(subscription?.ToEntitlement(), request.Region).Denial is { } denial)
        {
            return new SessionFailure.NotEntitled(denial);
        }
        if (await usage.GetAsync(customerId, time.GetUtcNow(), cancellationToken) is { Exhausted: true } used)
        {
            return new SessionFailure.QuotaExceeded(used.Period.End);
        }
        if (await devices.GetAsync(customerId, deviceId, cancellationToken) is null)
        {
            return new SessionFailure.DeviceNotFound();
        }
        if (!replace && await sessions.GetLiveIdAsync(customerId, cancellationToken) is { } live)
        {
            return new SessionFailure.Conflict(live);
        }
        var choice = await SelectAsync(request, excluded, cancellationToken);
        return NoNodes(choice.Rejected, excluded.Count);
    }
}
