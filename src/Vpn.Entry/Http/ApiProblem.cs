namespace Vpn.Entry.Http;

/// <summary>
/// The stable error codes of the public contract (api-v1.md). Handlers throw <see cref="ApiProblemException"/>;
/// one exception handler turns it into application/problem+json.
/// </summary>
public static class ErrorCodes
{
    public const string InvalidRequest = "invalid_request";
    public const string Unauthorized = "unauthorized";
    public const string MissingToken = "missing_token";
    public const string InvalidToken = "invalid_token";
    public const string TokenExpired = "token_expired";
    public const string TokenRevoked = "token_revoked";
    public const string InvalidIdToken = "invalid_id_token";
    public const string OidcExchangeFailed = "oidc_exchange_failed";
    public const string OidcProviderUnavailable = "oidc_provider_unavailable";
    public const string SignInNotConfigured = "sign_in_not_configured";
    public const string RevocationUnavailable = "revocation_unavailable";
    public const string RateLimited = "rate_limited";
    public const string InvalidPublicKey = "invalid_public_key";
    public const string DeviceKeyInUse = "device_key_in_use";
    public const string DeviceLimitReached = "device_limit_reached";
    public const string SubscriptionInactive = "subscription_inactive";
    public const string DeviceNotFound = "device_not_found";
    public const string SessionConflict = "session_conflict";
    public const string RegionNotAllowed = "region_not_allowed";
    public const string InvalidNodeHint = "invalid_node_hint";
    public const string NoNodesAvailable = "no_nodes_available_in_region";
    public const string NodeUnavailable = "node_unavailable";
    public const string NodeBusy = "node_busy";
    public const string ServerBusy = "server_busy";
    public const string NoActiveSession = "no_active_session";
    public const string NodeNotFound = "node_not_found";
    public const string NodeNotEmpty = "node_not_empty";
    public const string NodeNotDraining = "node_not_draining";
    public const string PlanNotFound = "plan_not_found";
    public const string SubscriptionNotFound = "subscription_not_found";
    public const string NotFound = "not_found";
    public const string CustomerNotFound = "customer_not_found";
    public const string CustomerErased = "customer_erased";
    public const string InvalidSessionKey = "invalid_session_key";
    public const string IdempotencyKeyReused = "idempotency_key_reused";
    public const string IdempotencyKeyInProgress = "idempotency_key_in_progress";
    public const string Internal = "internal_error";
    public const string StoreUnavailable = "store_unavailable";
    public const string CatalogNotConfigured = "catalog_not_configured";
    public const string QuotaExceeded = "quota_exceeded";
    public const string TooManyStreams = "too_many_streams";
}

public class ApiProblemException(int status, string code, string detail, IReadOnlyDictionary<string, object?>? extensions = null)
    : Exception(detail)
{
    public int Status { get; } = status;

    public string Code { get; } = code;

    public IReadOnlyDictionary<string, object?> Extensions { get; } = extensions ?? new Dictionary<string, object?>();

    public static ApiProblemException BadRequest(string detail, string code = ErrorCodes.InvalidRequest) => new(StatusCodes.Status400BadRequest, code, detail);

    public static ApiProblemException NotFound(string code, string detail) => new(StatusCodes.Status404NotFound, code, detail);

    public static ApiProblemException Forbidden(string code, string detail) => new(StatusCodes.Status403Forbidden, code, detail);

    public static ApiProblemException Unauthorized(string code, string detail) => new(StatusCodes.Status401Unauthorized, code, detail);
}
