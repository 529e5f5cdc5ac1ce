using System.Globalization;
using Grpc.Core;
using Vpn.Contracts.Core.V1;
using Vpn.Entry.Data;
using Vpn.Entry.Nodes;

namespace Vpn.Entry.Health;

/// <summary><c>store</c>: PostgreSQL answers and every migration is applied — the same probe as GET /readyz.</summary>
public sealed class StoreReadinessCheck(IStoreSchema schema) : IReadinessCheck
{
    /// <summary>The probe's own deadline (that of /readyz); the check's is a little longer so the probe's answer wins.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);

    public string Name => "store";

    public TimeSpan Timeout => ProbeTimeout + TimeSpan.FromSeconds(1);

    public async Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken) =>
        await schema.CheckAsync(ProbeTimeout, cancellationToken) switch
        {
            StoreReadiness.InMemory => ReadinessCheckResult.Pass("in-memory store (no DATABASE_URL)"),
            StoreReadiness.Current => ReadinessCheckResult.Pass($"PostgreSQL reachable; schema at {Migrator.LatestVersion}"),
            StoreReadiness.MigrationsPending => ReadinessCheckResult.Fail($"PostgreSQL reachable; migrations pending (this build needs {Migrator.LatestVersion}): run migrate"),
            _ => ReadinessCheckResult.Fail($"PostgreSQL unreachable or no answer within {ProbeTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s"),
        };
}

/// <summary>
/// <c>revocation_list</c>: this replica can vouch for its revocation list, i.e. authenticated requests are not failing
/// closed. Asks the list exactly as a request would, so the verdict is the one requests get.
/// </summary>
public sealed class RevocationListReadinessCheck(ITokenRevocations revocations, EntryOptions options) : IReadinessCheck
{
    // Not a jti we issue (ours are UUIDs): the lookup's answer is irrelevant, only whether it can be made.
    /// <summary>A jti no token carries: asking for it tells whether the list is fresh, nothing else.</summary>
    public const string ProbeJti = "readiness-probe";

    public string Name => "revocation_list";

    // Right after start a lookup waits up to the staleness bound for the first load.
    public TimeSpan Timeout => options.RevocationMaxStaleness + TimeSpan.FromSeconds(1);

    public async Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken)
    {
        var bound = $"{options.RevocationMaxStaleness.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)} ms";
        try
        {
            await revocations.IsRevokedAsync(ProbeJti, cancellationToken);
        }
        catch (ApiProblemException e) when (e.Code == ErrorCodes.RevocationUnavailable)
        {
            return ReadinessCheckResult.Fail($"list not refreshed within {bound}: authenticated requests answer 503 revocation_unavailable");
        }
        return ReadinessCheckResult.Pass(options.DatabaseConnectionString is null
            ? "in-process list (in-memory store)"
            : $"following revoked_tokens; refreshed within {bound}");
    }
}

/// <summary><c>sign_in</c>: the Google OAuth client is configured. Outside production running without it is allowed (and said).</summary>
public sealed class SignInReadinessCheck(EntryOptions options) : IReadinessCheck
{
    public string Name => "sign_in";

    public Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken)
    {
        var oidc = options.Oidc;
        // The issuer's host only: the rest of a configured URL is the operator's business.
        var issuer = Uri.TryCreate(oidc.Issuer, UriKind.Absolute, out var uri) ? uri.Host : "unknown";
        return Task.FromResult(
            oidc.Configured ? ReadinessCheckResult.Pass($"Google OIDC client configured (issuer {issuer})")
            : options.IsProduction ? ReadinessCheckResult.Fail("GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET not set: sign-in answers 503 sign_in_not_configured")
            : ReadinessCheckResult.Pass($"not configured (GOOGLE_CLIENT_ID/GOOGLE_CLIENT_SECRET unset); allowed outside production (APP_ENV={options.Environment}), sign-in answers 503 sign_in_not_configured"));
    }
}

/// <summary><c>nodes</c>: at least one registered node is healthy with a fresh heartbeat, i.e. a session could be placed somewhere.</summary>
public sealed class NodesReadinessCheck(INodeStore nodes, EntryOptions options, TimeProvider time) : IReadinessCheck
{
    public string Name => "nodes";

    public async Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken)
    {
        var all = await nodes.ListAsync(cancellationToken);
        if (all.Count == 0)
        {
            return ReadinessCheckResult.Fail("no node registered");
        }
        var now = time.GetUtcNow();
        var stale = all.Count(n => !HasFreshHeartbeat(n, now, options.NodeFreshness));
        var unhealthy = all.Count(n => !n.Healthy && HasFreshHeartbeat(n, now, options.NodeFreshness));
        var ready = all.Count - stale - unhealthy;
        var detail = string.Create(CultureInfo.InvariantCulture,
            $"{ready} of {all.Count} registered nodes healthy with a heartbeat within {options.NodeFreshness.TotalSeconds} s ({stale} stale, {unhealthy} reporting unhealthy)");
        return ready > 0 ? ReadinessCheckResult.Pass(detail) : ReadinessCheckResult.Fail(detail);
    }

    /// <summary>The selection policy's freshness rule (NodeSelection.Reject): a heartbeat no older than APP_NODE_FRESHNESS_SECS.</summary>
    public static bool HasFreshHeartbeat(Node node, DateTimeOffset now, TimeSpan freshness)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.LastHeartbeatAt is { } beat && now - beat <= freshness;
    }
}

/// <summary>
/// <c>cores</c>: every node with a fresh heartbeat answers GetNodeStatus, concurrently, within APP_CORE_TIMEOUT_MS, with
/// healthy and synced (its last reconcile pass converged — a core without CORE_ENTRY_URL never is) and, where the core
/// checks its DNS resolver, a resolver that answers. No fresh node: nothing to ask, ok (the <c>nodes</c> check says what
/// is missing).
/// </summary>
public sealed partial class CoresReadinessCheck(INodeStore nodes, CoreClients cores, EntryOptions options, TimeProvider time,
    ILogger<CoresReadinessCheck> logger) : IReadinessCheck
{
    // Beyond this the detail says "and N more": it names nodes for an operator, it is not an inventory.
    private const int MaxNamedFailures = 20;

    private const int MaxConcurrentCalls = 32;

    private const int MaxResolverDetail = 200;

    public string Name => "cores";

    // Each call has the configured core deadline; the check a little more, so a slow core is named rather than the check timing out.
    public TimeSpan Timeout => options.CoreCallTimeout + TimeSpan.FromSeconds(1);

    public async Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var fresh = (await nodes.ListAsync(cancellationToken)).Where(n => NodesReadinessCheck.HasFreshHeartbeat(n, now, options.NodeFreshness)).ToList();
        if (fresh.Count == 0)
        {
            return ReadinessCheckResult.Pass("no node with a fresh heartbeat to ask");
        }
        var deadline = time.GetUtcNow().UtcDateTime + options.CoreCallTimeout;
        // All at once up to a bound: a large fleet gets at most MaxConcurrentCalls calls in flight per readiness request
        // (one deadline for all, so a core not asked in time counts as not answering).
        using var slots = new SemaphoreSlim(MaxConcurrentCalls);
        var problems = await Task.WhenAll(fresh.Select(async node =>
        {
            await slots.WaitAsync(cancellationToken);
            try
            {
                return await AskAsync(node, deadline, cancellationToken);
            }
            finally
            {
                slots.Release();
            }
        }));
        var failed = fresh.Zip(problems).Where(p => p.Second is not null).ToList();
        var detail = string.Create(CultureInfo.InvariantCulture, $"{fresh.Count - failed.Count} of {fresh.Count} cores healthy and synced");
        if (failed.Count == 0)
        {
            return ReadinessCheckResult.Pass(detail);
        }
        var named = string.Join(", ", failed.Take(MaxNamedFailures).Select(f => $"{f.First.Name} ({f.Second})"));
        var more = failed.Count > MaxNamedFailures ? string.Create(CultureInfo.InvariantCulture, $" and {failed.Count - MaxNamedFailures} more") : "";
        return ReadinessCheckResult.Fail($"{detail}; failed: {named}{more}");
    }

    /// <summary>Null when the core is healthy and synced, else a short reason.</summary>
    private async Task<string?> AskAsync(Node node, DateTime deadline, CancellationToken cancellationToken)
    {
        string? problem;
        try
        {
            var status = await cores.For(node.CoreEndpoint).GetNodeStatusAsync(new GetNodeStatusRequest(), deadline: deadline, cancellationToken: cancellationToken);
            var problems = new List<string>(3);
            if (!status.Healthy)
            {
                problems.Add("unhealthy");
            }
            // Its clients would be connected without names: said apart from "unhealthy", with the core's own reason.
            if (CoreResolverView.IsFailing(status.Resolver))
            {
                var why = status.Resolver.Detail.Length > MaxResolverDetail ? status.Resolver.Detail[..MaxResolverDetail] + "…" : status.Resolver.Detail;
                problems.Add(why.Length == 0 ? "resolver failing" : $"resolver failing: {why}");
            }
            if (!status.Synced)
            {
                problems.Add("not synced");
            }
            problem = problems.Count == 0 ? null : string.Join(", ", problems);
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
        {
            // The status code only: a transport message may quote the endpoint.
            problem = e.StatusCode == StatusCode.DeadlineExceeded ? "no answer in time" : $"unreachable: {e.StatusCode}";
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            // One odd node (say, a channel that cannot be built) must not hide the others' verdicts.
            problem = $"failed: {e.GetType().Name}";
        }
        if (problem is not null)
        {
            LogCoreNotReady(logger, node.Id, problem);
        }
        return problem;
    }

    [LoggerMessage(EventId = 312, Level = LogLevel.Warning, Message = "Readiness: core of node {NodeId} not ready: {Problem}")]
    private static partial void LogCoreNotReady(ILogger logger, Guid nodeId, string problem);
}

/// <summary>
/// privacy: in production logs redact strictly, and (everywhere) the retention cleanup completes its passes: a replica
/// whose cleanup keeps failing is piling up data it promised to delete.
/// </summary>
public sealed class PrivacyReadinessCheck(EntryOptions options, Privacy.RetentionStatus status, TimeProvider time) : IReadinessCheck
{
    public string Name => "privacy";

    public Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken)
    {
        var privacy = options.Privacy;
        var mode = privacy.LogRedaction.ToString().ToLowerInvariant();
        if (options.IsProduction && privacy.LogRedaction != Privacy.LogRedactionMode.Strict)
        {
            return Task.FromResult(ReadinessCheckResult.Fail($"log redaction is {mode}; production requires strict"));
        }
        var (lastSuccess, _, lastFailureAt, lastFailure) = status.Snapshot();
        var now = time.GetUtcNow();
        if (lastFailure is not null && (lastSuccess is null || lastFailureAt > lastSuccess))
        {
            return Task.FromResult(ReadinessCheckResult.Fail($"the last retention cleanup pass failed ({lastFailure})"));
        }
        if (lastSuccess is { } at && now - at > 3 * privacy.CleanupInterval)
        {
            return Task.FromResult(ReadinessCheckResult.Fail("no retention cleanup pass completed for more than three intervals"));
        }
        var pass = lastSuccess is null ? "first cleanup pass pending" : "last cleanup pass ok";
        var detail = string.Create(CultureInfo.InvariantCulture,
            $"log redaction {mode}; ended sessions kept {(int)privacy.SessionRetention.TotalDays} d, audit events {(int)privacy.AuditRetention.TotalDays} d; {pass}");
        return Task.FromResult(ReadinessCheckResult.Pass(detail));
    }
}

/// <summary>core_tls: while APP_REQUIRE_CORE_TLS is on, every registered node is reached over https:// or a local unix: socket.</summary>
public sealed class CoreTlsReadinessCheck(INodeStore nodes, EntryOptions options) : IReadinessCheck
{
    public string Name => "core_tls";

    public async Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken)
    {
        if (!options.CoreTls.Require)
        {
            return ReadinessCheckResult.Pass(options.IsProduction ? "not required" : "not required (development)");
        }
        var all = await nodes.ListAsync(cancellationToken);
        var cleartext = all.Where(n => !CoreChannelFactory.IsSecureEndpoint(n.CoreEndpoint)).Select(n => n.Name).ToList();
        return cleartext.Count == 0
            ? ReadinessCheckResult.Pass(string.Create(CultureInfo.InvariantCulture, $"required; all {all.Count} node endpoints use TLS or a local socket"))
            : ReadinessCheckResult.Fail($"required, but these nodes have cleartext core endpoints: {string.Join(", ", cleartext.Take(20))}");
    }
}
