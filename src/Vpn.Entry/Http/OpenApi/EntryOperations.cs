using static Vpn.Entry.Http.ErrorCodes;

namespace Vpn.Entry.Http.OpenApi;

/// <summary>One operation of the contract: its OpenAPI id and summary, and the problems its handler answers.</summary>
public sealed record EntryOperation(string Method, string Route, string OperationId, string Summary, IReadOnlyList<ProblemCodes> Problems);

/// <summary>
/// The operations of docs/api-v1.md as OpenAPI names them, with the problem codes each handler answers beyond those its
/// kind implies (<see cref="ImplicitProblems"/>) and those its result type lists (<see cref="IProblemStatuses"/>).
/// Keyed by method and route template; every mapped endpoint must be here (the OpenAPI tests check both ways), and the
/// tests fail when an endpoint answers a problem its operation does not list.
/// </summary>
public static class EntryOperations
{
    public static IReadOnlyList<EntryOperation> All { get; } =
    [
        new("GET", "/v1/locations", "getLocations", "The signed public server list: locations with load and availability",
            [new(503, [CatalogNotConfigured])]),
        new("GET", "/healthz", "getHealth", "Liveness: 200 while the process runs", []),
        new("GET", "/readyz", "getReadiness", "Readiness: 200 when the store is reachable and migrations are current, else 503", []),

        new("POST", "/v1/auth/oauth/google/callback", "signInWithGoogle", "Exchange a Google authorization code (PKCE) for an access token",
        [
            new(401, [OidcExchangeFailed, InvalidIdToken]),
            new(409, [CustomerErased]),
            new(502, [OidcProviderUnavailable]),
            new(503, [SignInNotConfigured]),
        ]),
        new("POST", "/v1/auth/logout", "logout", "Revoke this access token on every replica", []),
        new("POST", "/v1/auth/logout-all", "logoutAll", "Revoke every token of the customer and end its active session", []),
        new("GET", "/v1/me", "getMe", "The signed-in customer, its subscription and its data use this billing period", []),
        new("DELETE", "/v1/me", "eraseMe", "Erase the customer: identities, subscriptions, devices, sessions, audit events", []),

        new("POST", "/v1/devices", "registerDevice", "Register a device's WireGuard public key",
        [
            new(400, [InvalidPublicKey]),
            new(403, [SubscriptionInactive, DeviceLimitReached]),
            new(409, [DeviceKeyInUse]),
        ]),
        new("GET", "/v1/devices", "listDevices", "The customer's devices", []),
        new("DELETE", "/v1/devices/{id}", "deleteDevice", "Delete a device (its active session ends, its peer is removed)",
            [new(404, [DeviceNotFound])]),

        new("POST", "/v1/sessions", "startSession", "Start the customer's one VPN session on a node of the region", []),
        new("POST", "/v1/sessions/reconnect", "reconnectSession", "Reconnect by session key (moves the session off an unhealthy or draining node)", []),
        new("GET", "/v1/sessions/current", "getCurrentSession", "The active session, without its key", []),
        new("DELETE", "/v1/sessions/current", "endCurrentSession", "End the active session (its peer is removed)", []),
        new("GET", "/v1/sessions/current/events", "streamSessionEvents",
            "Server-Sent Events about the session: superseded, ended or moved, with the reason (resumable with Last-Event-ID)",
        [
            new(400, [InvalidRequest]),
            new(404, [NoActiveSession]),
            new(429, [TooManyStreams]),
            new(503, [ServerBusy]),
        ]),

        new("GET", "/v1/admin/nodes", "listNodes", "Every registered node with health, load and drain state", []),
        new("POST", "/v1/admin/nodes", "registerNode", "Register or update a node (upsert by name)", [new(400, [InvalidPublicKey])]),
        new("POST", "/v1/admin/nodes/{id}/drain", "drainNode", "Drain a node: no new sessions; optionally move its sessions",
            [new(400, [InvalidRequest]), new(404, [NodeNotFound])]),
        new("POST", "/v1/admin/nodes/{id}/undrain", "undrainNode", "Make a drained node a candidate again",
            [new(400, [InvalidRequest]), new(404, [NodeNotFound])]),
        new("DELETE", "/v1/admin/nodes/{id}", "deleteNode", "Delete a drained, empty node",
            [new(400, [InvalidRequest]), new(404, [NodeNotFound]), new(409, [NodeNotDraining, NodeNotEmpty])]),
        new("POST", "/v1/internal/nodes/health", "postNodeHeartbeat", "Core's heartbeat: health and active peer count", [new(404, [NodeNotFound])]),
        new("POST", "/v1/internal/nodes/{node_id}/usage", "postNodeUsage", "Core's report of its sessions' WireGuard counters (quotas)",
            [new(400, [InvalidRequest]), new(404, [NodeNotFound])]),
        new("GET", "/v1/internal/nodes/{node_id}/peers", "getNodePeers", "The peers the database says belong on the node",
            [new(400, [InvalidRequest]), new(404, [NodeNotFound])]),
        new("GET", "/v1/admin/core/status", "getCoreStatus", "A node's core status over gRPC",
            [new(400, [InvalidRequest]), new(404, [NodeNotFound]), new(502, [NodeUnavailable])]),
        new("GET", "/v1/admin/readiness", "getDeploymentReadiness", "Every readiness check of this deployment, 503 when one fails", []),

        new("GET", "/v1/admin/customers/{customer_id}/usage", "getCustomerUsage", "A customer's data use in its current billing period",
            [new(400, [InvalidRequest])]),
        new("POST", "/v1/admin/customers/{customer_id}/usage/reset", "resetCustomerUsage", "Start the customer's current billing period's use again from zero",
            [new(400, [InvalidRequest])]),
        new("GET", "/v1/admin/plans", "listPlans", "Every plan", []),
        new("POST", "/v1/admin/plans", "upsertPlan", "Create or update a plan (upsert by code)", []),
        new("POST", "/v1/admin/subscriptions", "setSubscription", "Set a customer's plan and status (closes the previous period)",
            [new(404, [PlanNotFound]), new(409, [CustomerErased])]),
        new("GET", "/v1/admin/subscriptions", "listSubscriptions", "Current subscriptions, filtered, keyset-paginated", [new(400, [InvalidRequest])]),
        new("GET", "/v1/admin/subscriptions/count", "countSubscriptions", "How many current subscriptions match the filters", [new(400, [InvalidRequest])]),
        new("GET", "/v1/admin/subscriptions/export", "exportSubscriptions", "Every matching subscription as streamed CSV", [new(400, [InvalidRequest])]),
        new("GET", "/v1/admin/subscriptions/{customer_id}", "getSubscription", "A customer's latest subscription",
            [new(400, [InvalidRequest]), new(404, [SubscriptionNotFound])]),
        new("GET", "/v1/admin/subscriptions/{customer_id}/history", "getSubscriptionHistory", "A customer's subscription periods, oldest first",
            [new(400, [InvalidRequest]), new(404, [SubscriptionNotFound])]),
        new("GET", "/v1/admin/audit/export", "exportAuditEvents", "The audit trail, streamed as NDJSON or CSV, filtered by time and kind",
            [new(400, [InvalidRequest])]),
        new("GET", "/v1/admin/privacy/conformance", "getPrivacyConformance",
            "Proof from the live database that nothing is kept past its window, no column holds a client address, logs are strict", []),
        new("GET", "/v1/admin/privacy/policy", "getPrivacyPolicy", "Retention windows, redaction mode and compliance hints in force", []),
        new("DELETE", "/v1/admin/customers/{customer_id}", "eraseCustomer", "Erase a customer (as DELETE /v1/me)",
            [new(400, [InvalidRequest]), new(404, [CustomerNotFound])]),
    ];

    private static readonly Dictionary<string, EntryOperation> ByKey =
        All.ToDictionary(o => Key(o.Method, o.Route), StringComparer.Ordinal);

    /// <summary>The operation of a method and route template (e.g. "/v1/sessions/" or "v1/sessions"), or null.</summary>
    public static EntryOperation? Find(string method, string route) => ByKey.GetValueOrDefault(Key(method, route));

    /// <summary>A route template as the catalogue writes it: one leading slash, none trailing.</summary>
    public static string NormalizeRoute(string route)
    {
        ArgumentNullException.ThrowIfNull(route);
        var trimmed = route.Trim('/');
        return "/" + trimmed;
    }

    private static string Key(string method, string route) => method.ToUpperInvariant() + " " + NormalizeRoute(route);
}
