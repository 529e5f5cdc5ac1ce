using Vpn.ServiceDefaults;
using System.Globalization;

namespace Vpn.Entry.Configuration;

/// <summary>
/// Entry's settings, read from the operator-facing environment names of the original system. Every secret may
/// instead be given as a file path in NAME_FILE (Kubernetes secrets). All problems are reported at once.
/// </summary>
public sealed class EntryOptions
{
    public const string DevelopmentAdminToken = "dev-admin-token";

    /// <summary>"development" unless APP_ENV says otherwise; "production" turns on the guardrails.</summary>
    public string Environment { get; init; } = "development";

    public bool IsProduction => string.Equals(Environment, "production", StringComparison.OrdinalIgnoreCase);

    /// <summary>The signed public server list (APP_CATALOG_*).</summary>
    public LocationCatalogOptions Locations { get; init; } = new();

    /// <summary>Npgsql connection string; null selects the in-memory store.</summary>
    public string? DatabaseConnectionString { get; init; }

    public string AdminToken { get; init; } = DevelopmentAdminToken;

    /// <summary>Nodes whose last heartbeat is older than this are not selected (APP_NODE_FRESHNESS_SECS, default 60).</summary>
    public TimeSpan NodeFreshness { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// APP_NODE_CACHE_REFRESH_MS: how old the in-memory node registry session starts choose from may get before it is
    /// read again (besides LISTEN/NOTIFY on node changes and this replica's own heartbeats); 0 reads it on every start.
    /// Default 2000 with PostgreSQL, 0 with the in-memory store.
    /// </summary>
    public TimeSpan NodeCacheRefresh { get; init; }

    public bool AllowLegacyCustomerHeader { get; init; } = true;

    /// <summary>Apply migrations at start (APP_MIGRATE_ON_START; default true outside production).</summary>
    public bool MigrateOnStart { get; init; } = true;

    /// <summary>Seed the development plan and node (APP_SEED_DEV_DATA; default true with the in-memory store).</summary>
    public bool SeedDevelopmentData { get; init; }

    /// <summary>Core endpoint of the seeded development node (APP_DEV_CORE_ENDPOINT).</summary>
    public string DevelopmentCoreEndpoint { get; init; } = "http://127.0.0.1:50051";

    /// <summary>Deadline of each gRPC call to a node's core (APP_CORE_TIMEOUT_MS, default 5000).</summary>
    public TimeSpan CoreCallTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Age after which the sweeper marks a 'provisioning' row failed: its start died half-way, e.g. entry was killed
    /// between the claim and the answer (APP_PROVISIONING_TIMEOUT_SECS, default 120; at least twice APP_CORE_TIMEOUT_MS,
    /// so a start still waiting for core is never swept from under itself).
    /// </summary>
    public TimeSpan ProvisioningTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Age after which an Idempotency-Key record still pending is taken over by a retry with that key: its start's entry
    /// died, or lost the database, before recording or releasing it (APP_IDEMPOTENCY_PENDING_TIMEOUT_SECS, default 30 or twice
    /// APP_CORE_TIMEOUT_MS if longer; at least twice APP_CORE_TIMEOUT_MS, so a start still waiting for core is not run twice).
    /// </summary>
    public TimeSpan IdempotencyPendingTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time between provisioning sweeps (APP_PROVISIONING_SWEEP_SECS, default 30).</summary>
    public TimeSpan ProvisioningSweepInterval { get; init; } = TimeSpan.FromSeconds(30);

    public required AccessTokenOptions AccessTokens { get; init; }

    public required OidcOptions Oidc { get; init; }

    public required RateLimitOptions RateLimits { get; init; }

    /// <summary>
    /// Authenticated requests fail closed (503) when the revocation list is older than this (APP_REVOCATION_MAX_STALENESS_MS,
    /// default 1000, at most 1000): a revocation on another replica is honoured here within this bound even if notifications stop.
    /// </summary>
    public TimeSpan RevocationMaxStaleness { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How entry reaches cores: TLS required or not, the CA it trusts, its client certificate.</summary>
    public CoreTlsOptions CoreTls { get; init; } = new();

    /// <summary>Storm shedding: per-node Connect queues, admission per replica, jittered Retry-After.</summary>
    public LoadSheddingOptions Shedding { get; init; } = new();

    /// <summary>Pool size, connect timeout and the connection budget (APP_DB_POOL_SIZE, APP_ENTRY_REPLICAS, …).</summary>
    public DatabasePoolOptions DatabasePool { get; init; } = new();

    /// <summary>Retention windows and log redaction (APP_SESSION_RETENTION_DAYS, APP_AUDIT_RETENTION_DAYS, APP_LOG_REDACTION_MODE, …).</summary>
    public Vpn.Entry.Privacy.PrivacyOptions Privacy { get; init; } = new();

    /// <summary>Moving a drained node's sessions (APP_DRAIN_BATCH_SIZE, APP_DRAIN_CONCURRENCY, APP_DRAIN_INTERVAL_SECS).</summary>
    public DrainOptions Drain { get; init; } = new();

    /// <summary>Session event streams (APP_SESSION_EVENTS_HEARTBEAT_SECS, APP_SESSION_EVENTS_MAX_PER_CUSTOMER, APP_SESSION_EVENTS_MAX_STREAMS).</summary>
    public SessionEventsOptions SessionEvents { get; init; } = new();

    /// <summary>
    /// Only the database settings (DATABASE_URL or DATABASE_URL_FILE, the pool settings): all that <c>migrate</c> uses, so
    /// a migration step needs no other secret or setting, in production too. Null connection string: none configured.
    /// </summary>
    public static (string? ConnectionString, DatabasePoolOptions Pool) LoadDatabase(IConfiguration configuration, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(problems);
        var databaseUrl = Settings.Secret(configuration, "DATABASE_URL", problems);
        string? connectionString = null;
        if (!string.IsNullOrWhiteSpace(databaseUrl))
        {
            try
            {
                connectionString = Data.DatabaseUrl.ToConnectionString(databaseUrl);
            }
            catch (FormatException e)
            {
                // DatabaseUrl's messages say what is wrong without quoting the value (it carries the password).
                problems.Add(e.Message);
            }
            catch (Exception e) when (e is ArgumentException or UriFormatException)
            {
                // Never echo the value: it carries the password.
                problems.Add("DATABASE_URL is not a valid postgres:// URL or Npgsql connection string.");
            }
        }
        var databasePool = DatabasePoolOptions.Load(configuration, ref connectionString, problems);
        return (connectionString, databasePool);
    }

    public static EntryOptions Load(IConfiguration configuration, out IReadOnlyList<string> errors)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var problems = new List<string>();
        var environment = configuration["APP_ENV"] ?? "development";
        var production = string.Equals(environment, "production", StringComparison.OrdinalIgnoreCase);
        var (connectionString, databasePool) = LoadDatabase(configuration, problems);
        var adminToken = Settings.Secret(configuration, "ADMIN_API_TOKEN", problems);
        if (string.IsNullOrEmpty(adminToken))
        {
            if (production)
            {
                problems.Add("ADMIN_API_TOKEN is required in production.");
            }
            adminToken = DevelopmentAdminToken;
        }
        else if (production && (adminToken.Length < 32 || adminToken == DevelopmentAdminToken))
        {
            problems.Add("ADMIN_API_TOKEN must be at least 32 characters in production and not the development token.");
        }
        var legacyHeader = Settings.Flag(configuration, "APP_ALLOW_LEGACY_CUSTOMER_HEADER", !production, problems);
        if (production && legacyHeader)
        {
            problems.Add("APP_ALLOW_LEGACY_CUSTOMER_HEADER must be false in production.");
        }
        if (production && connectionString is null)
        {
            problems.Add("DATABASE_URL is required in production (the in-memory store is for local runs only).");
        }
        var coreCallTimeout = TimeSpan.FromMilliseconds(Settings.Number(configuration, "APP_CORE_TIMEOUT_MS", 5000, 100, 120_000, problems));
        var provisioningTimeout = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_PROVISIONING_TIMEOUT_SECS", 120, 1, 86_400, problems));
        if (provisioningTimeout < 2 * coreCallTimeout)
        {
            problems.Add("APP_PROVISIONING_TIMEOUT_SECS must be at least twice APP_CORE_TIMEOUT_MS (a start still waiting for core would be swept).");
        }
        // Unset: 30 s, or twice the core deadline when that is longer.
        var defaultPendingSecs = (int)Math.Max(30, Math.Ceiling(2 * coreCallTimeout.TotalSeconds));
        var idempotencyPendingTimeout = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_IDEMPOTENCY_PENDING_TIMEOUT_SECS", defaultPendingSecs, 1, 86_400, problems));
        if (idempotencyPendingTimeout < 2 * coreCallTimeout)
        {
            problems.Add("APP_IDEMPOTENCY_PENDING_TIMEOUT_SECS must be at least twice APP_CORE_TIMEOUT_MS (a start still waiting for core would run twice).");
        }
        var options = new EntryOptions
        {
            IdempotencyPendingTimeout = idempotencyPendingTimeout,
            Environment = environment,
            DatabaseConnectionString = connectionString,
            DatabasePool = databasePool,
            AdminToken = adminToken,
            NodeFreshness = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_NODE_FRESHNESS_SECS", 60, 1, 86_400, problems)),
            NodeCacheRefresh = TimeSpan.FromMilliseconds(Settings.Number(configuration, "APP_NODE_CACHE_REFRESH_MS", connectionString is null ? 0 : 2000, 0, 60_000, problems)),
            AllowLegacyCustomerHeader = legacyHeader,
            MigrateOnStart = Settings.Flag(configuration, "APP_MIGRATE_ON_START", !production, problems),
            SeedDevelopmentData = Settings.Flag(configuration, "APP_SEED_DEV_DATA", connectionString is null && !production, problems),
            DevelopmentCoreEndpoint = configuration["APP_DEV_CORE_ENDPOINT"] ?? "http://127.0.0.1:50051",
            CoreCallTimeout = coreCallTimeout,
            ProvisioningTimeout = provisioningTimeout,
            ProvisioningSweepInterval = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_PROVISIONING_SWEEP_SECS", 30, 1, 3600, problems)),
            AccessTokens = IdentitySettings.LoadAccessTokens(configuration, production, problems),
            Oidc = IdentitySettings.LoadOidc(configuration, production, problems),
            RateLimits = RateLimitOptions.Load(configuration, problems),
            RevocationMaxStaleness = TimeSpan.FromMilliseconds(Settings.Number(configuration, "APP_REVOCATION_MAX_STALENESS_MS", 1000, 300, 1000, problems)),
            Privacy = Vpn.Entry.Privacy.PrivacyOptions.Load(configuration, production, problems),
            CoreTls = CoreTlsOptions.Load(configuration, production, problems),
            Shedding = LoadSheddingOptions.Load(configuration, problems),
            Drain = DrainOptions.Load(configuration, problems),
            SessionEvents = SessionEventsOptions.Load(configuration, problems),
            Locations = LocationCatalogOptions.Load(configuration, problems),
        };
        errors = problems;
        return options;
    }
}

/// <summary>
/// entry → core gRPC: APP_REQUIRE_CORE_TLS (default and required in production) refuses cleartext TCP core endpoints (a
/// unix: socket stays allowed: it is on this host); APP_CORE_TLS_CA_FILE (PEM) is the CA that issues the cores'
/// certificates, trusted instead of the machine's store; APP_CORE_TLS_CLIENT_CERT_FILE and APP_CORE_TLS_CLIENT_KEY_FILE
/// (PEM) are entry's client certificate for the cores' mTLS.
/// </summary>
public sealed class CoreTlsOptions
{
    public bool Require { get; init; }

    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? Authorities { get; init; }

    public System.Security.Cryptography.X509Certificates.X509Certificate2? ClientCertificate { get; init; }

    public static CoreTlsOptions Load(IConfiguration configuration, bool production, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(problems);
        var require = Settings.Flag(configuration, "APP_REQUIRE_CORE_TLS", production, problems);
        if (production && !require)
        {
        problems.Add("APP_REQUIRE_CORE_TLS must be true in production.");
        }
        var caFile = configuration["APP_CORE_TLS_CA_FILE"];
        var certificateFile = configuration["APP_CORE_TLS_CLIENT_CERT_FILE"];
        var authorities = string.IsNullOrEmpty(caFile) ? null : TlsFiles.LoadAuthorities(caFile, "APP_CORE_TLS_CA_FILE", problems);
        var client = TlsFiles.LoadCertificate(configuration, "APP_CORE_TLS_CLIENT_CERT_FILE", "APP_CORE_TLS_CLIENT_KEY_FILE",
        TlsFiles.ClientAuthentication, problems);
        if (require && production && string.IsNullOrEmpty(caFile))
        {
        problems.Add("APP_CORE_TLS_CA_FILE is required in production (the cores' CA; the machine's public CAs must not vouch for a core).");
        }
        if (require && production && string.IsNullOrEmpty(certificateFile))
        {
        problems.Add("APP_CORE_TLS_CLIENT_CERT_FILE and APP_CORE_TLS_CLIENT_KEY_FILE are required in production (cores authenticate entry by mTLS).");
        }
        return new CoreTlsOptions { Require = require, Authorities = authorities, ClientCertificate = client };
    }
}
