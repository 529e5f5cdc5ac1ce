using Vpn.ServiceDefaults;

namespace Vpn.Entry.Configuration;

/// <summary>
/// How entry sheds a storm (a node or a region dropped and every app reconnects at once): early, cheaply and with a
/// spread-out retry hint, rather than by timing out in bulk.
/// </summary>
public sealed class LoadSheddingOptions
{
    /// <summary>Core Connect calls in flight per node (APP_CORE_CONCURRENCY_PER_NODE, default 32).</summary>
    public int CoreConcurrencyPerNode { get; init; } = 32;

    /// <summary>
    /// Connects waiting for one of those slots, per node (APP_CORE_QUEUE_PER_NODE, default 128); beyond it, or after
    /// waiting APP_CORE_TIMEOUT_MS, a start answers 503 node_busy and selection avoids the node while it is full.
    /// </summary>
    public int CoreQueuePerNode { get; init; } = 128;

    /// <summary>
    /// How long selection passes over a node whose core gave no answer to a Connect, or answered Unavailable (APP_NODE_UNREACHABLE_SECS, default
    /// 5; 0 turns it off): a crashed core stops taking the storm's starts at once, not when its heartbeat goes stale.
    /// </summary>
    public TimeSpan UnreachableBackoff { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Session starts and reconnects in progress per replica (APP_SESSION_ADMISSION_CONCURRENCY, default 64).</summary>
    public int AdmissionConcurrency { get; init; } = 64;

    /// <summary>Starts and reconnects waiting for admission per replica (APP_SESSION_ADMISSION_QUEUE, default 512).</summary>
    public int AdmissionQueue { get; init; } = 512;

    /// <summary>Longest wait for admission before 503 server_busy (APP_SESSION_ADMISSION_WAIT_MS, default 5000).</summary>
    public TimeSpan AdmissionWait { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Retry-After of every 502 and 503 answer: a whole number of seconds drawn uniformly from
    /// [APP_RETRY_AFTER_MIN_SECS, APP_RETRY_AFTER_MAX_SECS] (defaults 1 and 5), so a crowd told to retry does not come
    /// back in one second.
    /// </summary>
    public int RetryAfterMinSeconds { get; init; } = 1;

    public int RetryAfterMaxSeconds { get; init; } = 5;

    public static LoadSheddingOptions Load(IConfiguration configuration, List<string> problems)
    {
        var min = Settings.Number(configuration, "APP_RETRY_AFTER_MIN_SECS", 1, 1, 3600, problems);
        var max = Settings.Number(configuration, "APP_RETRY_AFTER_MAX_SECS", 5, 1, 3600, problems);
        if (max < min)
        {
            problems.Add("APP_RETRY_AFTER_MAX_SECS must not be below APP_RETRY_AFTER_MIN_SECS.");
        }
        return new LoadSheddingOptions
        {
            CoreConcurrencyPerNode = Settings.Number(configuration, "APP_CORE_CONCURRENCY_PER_NODE", 32, 1, 10_000, problems),
            CoreQueuePerNode = Settings.Number(configuration, "APP_CORE_QUEUE_PER_NODE", 128, 0, 100_000, problems),
            AdmissionConcurrency = Settings.Number(configuration, "APP_SESSION_ADMISSION_CONCURRENCY", 64, 1, 10_000, problems),
            AdmissionQueue = Settings.Number(configuration, "APP_SESSION_ADMISSION_QUEUE", 512, 0, 100_000, problems),
            AdmissionWait = TimeSpan.FromMilliseconds(Settings.Number(configuration, "APP_SESSION_ADMISSION_WAIT_MS", 5000, 10, 60_000, problems)),
            UnreachableBackoff = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_NODE_UNREACHABLE_SECS", 5, 0, 3600, problems)),
            RetryAfterMinSeconds = min,
            RetryAfterMaxSeconds = Math.Max(min, max),
        };
    }

    /// <summary>A Retry-After value: jittered within the configured bounds.</summary>
    public int NextRetryAfterSeconds() => Random.Shared.Next(RetryAfterMinSeconds, RetryAfterMaxSeconds + 1);
}
