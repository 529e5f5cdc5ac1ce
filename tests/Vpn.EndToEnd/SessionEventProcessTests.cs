namespace Vpn.EndToEnd;

/// <summary>
/// "You were replaced" across real entry processes: a stream open on a second entry replica (its own process, the same
/// PostgreSQL) learns that a start with replace_existing made through the first replica superseded the session. The
/// delivery time is printed (measured from the moment the replacing request was sent), not asserted.
/// </summary>
public sealed class SessionEventProcessTests(QuotaStackFixture stack) : IClassFixture<QuotaStackFixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60); // a cap for a loaded machine, not a measurement

    private static void Out(string line) => TestContext.Current.TestOutputHelper?.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}");

    [Fact(Timeout = 180_000)]
    public async Task A_stream_on_one_replica_hears_the_replace_made_on_the_other()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var laptop = await stack.CreateCustomerWithDeviceAsync(await WireGuardKeys.GenerateAsync(), ct);
        var phoneKeys = await WireGuardKeys.GenerateAsync();
        var phone = await stack.ExpectStatusAsync(await stack.EntryClient.CustomerAsync(laptop.CustomerId, HttpMethod.Post, "/v1/devices",
            new { Name = "phone", phoneKeys.PublicKey }, cancellationToken: ct), HttpStatusCode.Created);
        var (first, _) = await stack.StartSessionUntilCreatedAsync(laptop, Bound, ct);
        var firstId = first.Text("session_id");
        await using var replica = await stack.StartEntryReplicaAsync(ct);

        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(Bound);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/sessions/current/events");
        request.Headers.TryAddWithoutValidation("x-customer-id", laptop.CustomerId.ToString());
        using var http = new HttpClient { BaseAddress = replica.Client.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, bound.Token);
        await stack.CheckAsync(response.StatusCode == HttpStatusCode.OK && response.Content.Headers.ContentType?.MediaType == "text/event-stream",
            $"the replica's stream answered {(int)response.StatusCode} {response.Content.Headers.ContentType}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(bound.Token));
        var opened = await NextEventAsync(reader, bound.Token);
        await stack.CheckAsync(opened.Event == "current" && opened.Data.Contains(firstId, StringComparison.Ordinal), $"first event: {opened}");

        // The phone takes over, through the first replica.
        var watch = Stopwatch.StartNew();
        var replace = stack.EntryClient.CustomerAsync(laptop.CustomerId, HttpMethod.Post, "/v1/sessions",
            new { DeviceId = phone.Text("id"), Region = VpnStackFixture.Region, ReplaceExisting = true }, cancellationToken: ct);
        var told = await NextEventAsync(reader, bound.Token);
        var delivered = watch.Elapsed;
        var answered = await replace;
        Out($"superseded on replica 2 {delivered.TotalMilliseconds:0} ms after the replace was sent to replica 1 (its 201 took {watch.Elapsed.TotalMilliseconds:0} ms)");

        await stack.CheckAsync(answered.Status == HttpStatusCode.Created, answered.Describe());
        await stack.CheckAsync(told.Event == "superseded" && told.Data.Contains("\"reason\":\"replaced\"", StringComparison.Ordinal)
            && told.Data.Contains(firstId, StringComparison.Ordinal) && told.Id == $"{firstId}/end", $"second event: {told}");
        // After the terminal event the stream ends.
        await stack.CheckAsync(await reader.ReadToEndAsync(bound.Token) is { } rest && !rest.Contains("event:", StringComparison.Ordinal), "the stream went on after superseded");
    }

    private sealed record Received(string Event, string? Id, string Data);

    /// <summary>The next event of the stream (comments and the retry field skipped).</summary>
    private static async Task<Received> NextEventAsync(StreamReader reader, CancellationToken ct)
    {
        string? name = null, id = null;
        var data = new StringBuilder();
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.Length == 0)
            {
                if (data.Length > 0)
                {
                    return new Received(name ?? "message", id, data.ToString());
                }
                continue;
            }
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = line[4..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data.Append(line[6..]);
            }
        }
        throw new InvalidOperationException("the stream ended before the next event");
    }
}
