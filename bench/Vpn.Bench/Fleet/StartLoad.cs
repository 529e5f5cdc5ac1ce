using System.Net.Http.Headers;
using System.Text;

namespace Vpn.Bench.Fleet;

/// <summary>What one burst of session starts measured.</summary>
internal sealed record LoadResult(int Started, IReadOnlyDictionary<int, int> Failures, TimeSpan Elapsed, double P50Ms, double P99Ms)
{
    public double PerSecond => Started / Elapsed.TotalSeconds;

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Started} started in {Elapsed.TotalSeconds:F2} s = {PerSecond:F0}/s, p50 {P50Ms:F1} ms, p99 {P99Ms:F1} ms{FailureText}");

    private string FailureText => Failures.Count == 0 ? "" : ", failures " + string.Join(", ", Failures.Select(f => $"{f.Key}x{f.Value}"));
}

/// <summary>
/// The load driver: <c>POST /v1/sessions</c> for each (customer, device), from C concurrent clients, request i to replica
/// i mod R; each customer starts once. Customers are named by the development header <c>x-customer-id</c>.
/// </summary>
internal static class StartLoad
{
    public static async Task<LoadResult> RunAsync(IReadOnlyList<Uri> replicas, IReadOnlyList<(Guid Customer, Guid Device)> work, int concurrency)
    {
        var clients = replicas.Select(r => new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = r,
            Timeout = TimeSpan.FromSeconds(60),
        }).ToArray();
        var latencies = new double[work.Count];
        var statuses = new int[work.Count];
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            for (var i = Interlocked.Increment(ref next); i < work.Count; i = Interlocked.Increment(ref next))
            {
                var (customer, device) = work[i];
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/sessions")
                {
                    Content = new StringContent($"{{\"device_id\":\"{device}\",\"region\":\"{FleetRig.Region}\"}}", Encoding.UTF8, new MediaTypeHeaderValue("application/json")),
                };
                request.Headers.Add("x-customer-id", customer.ToString());
                var started = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await clients[i % clients.Length].SendAsync(request);
                    await response.Content.ReadAsByteArrayAsync();
                    statuses[i] = (int)response.StatusCode;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    statuses[i] = -1;
                }
                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
        })));
        var elapsed = clock.Elapsed;
        foreach (var client in clients)
        {
            client.Dispose();
        }
        var sorted = latencies.Order().ToArray();
        var failures = statuses.Where(s => s != 201).GroupBy(s => s).ToDictionary(g => g.Key, g => g.Count());
        return new LoadResult(statuses.Count(s => s == 201), failures, elapsed, Percentile(sorted, 0.50), Percentile(sorted, 0.99));
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}
