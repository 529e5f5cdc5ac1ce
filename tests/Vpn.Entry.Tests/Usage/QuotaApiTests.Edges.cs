namespace Vpn.Entry.Tests.Usage;

/// <summary>The report's and the admin views' edges: ids that are not UUIDs, unknown nodes, a core that is down.</summary>
public abstract partial class QuotaApiTests
{
    [Fact]
    public async Task Report_NodeIdNotAUuid_404_UnknownNode_Ignored()
    {
        await using var q = await StartAsync();
        var sessionId = await StartSessionAsync(q);

        var notFound = await q.Stack.SendJsonAsync(q.Stack.Admin(HttpMethod.Post, "/v1/internal/nodes/not-a-node/usage",
            new { sessions = new[] { Counters(sessionId, 1, Limit, 0) } }), 404);
        Assert.Equal("node_not_found", notFound.GetProperty("code").GetString());
        // A node that does not exist holds none of the sessions: nothing counts.
        await q.Stack.SendJsonAsync(q.Stack.Admin(HttpMethod.Post, $"/v1/internal/nodes/{Guid.NewGuid():D}/usage",
            new { sessions = new[] { Counters(sessionId, 1, Limit, 0) } }), 204);
        AssertUsage(await MeUsageAsync(q), 0, Limit, PeriodStart, ResetsAt);
        await q.Stack.SendJsonAsync(Report(q), 204);
    }

    [Fact]
    public async Task AdminUsage_CustomerIdNotAUuid_400_UnknownCustomer_NothingUsed()
    {
        await using var q = await StartAsync();

        foreach (var request in new[]
        {
            q.Stack.Admin(HttpMethod.Get, "/v1/admin/customers/nope/usage"),
            q.Stack.Admin(HttpMethod.Post, "/v1/admin/customers/nope/usage/reset"),
        })
        {
            var problem = await q.Stack.SendJsonAsync(request, 400);
            Assert.Equal("invalid_request", problem.GetProperty("code").GetString());
        }
        var unknown = await q.Stack.SendJsonAsync(q.Stack.Admin(HttpMethod.Get, $"/v1/admin/customers/{Guid.NewGuid():D}/usage"), 200);
        AssertUsage(unknown, 0, null, new DateTimeOffset(2028, 1, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2028, 2, 1, 0, 0, 0, TimeSpan.Zero));
        await q.Stack.SendJsonAsync(new HttpRequestMessage(HttpMethod.Get, $"/v1/admin/customers/{q.Customer.Id:D}/usage"), 401);
    }

    [Fact]
    public async Task Report_OverTheQuotaWhileTheCoreIsDown_SessionStillEnds_204()
    {
        await using var q = await StartAsync();
        var sessionId = await StartSessionAsync(q);
        q.Stack.CoreDown = true;

        await q.Stack.SendJsonAsync(Report(q, Counters(sessionId, 1, Limit, 1)), 204);

        // Ended in the database; the peer left on the node is reconciliation's to remove.
        await q.Stack.SendJsonAsync(TestStack.AsCustomer(q.Customer.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
        q.Stack.CoreDown = false;
        var peers = await q.Stack.SendJsonAsync(q.Stack.Admin(HttpMethod.Get, $"/v1/internal/nodes/{q.Customer.NodeId:D}/peers"), 200);
        Assert.Empty(peers.GetProperty("peers").EnumerateArray());
        await AssertQuotaExceededAsync(q, ResetsAt);
    }

    [Fact]
    public async Task Report_400EntriesOfTheLongestValues_FitsTheBodyLimit()
    {
        await using var q = await StartAsync();
        var sessionId = await StartSessionAsync(q);
        // What core may send at most: 400 entries, every number 19 digits (a session id that is not the node's is ignored).
        var entries = Enumerable.Range(0, 399).Select(_ => Counters(Guid.NewGuid(), long.MaxValue, long.MaxValue, long.MaxValue))
            .Prepend(Counters(sessionId, long.MaxValue, 1_000_000_000_000_000_000, 1_000_000_000_000_000_000)).ToArray();
        using var request = Report(q, entries);
        var length = (await request.Content!.ReadAsByteArrayAsync(Ct)).Length;
        Assert.InRange(length, 55_000, (int)EntryServiceCollectionExtensions.MaxRequestBodyBytes);

        await q.Stack.SendJsonAsync(request, 204);
        AssertUsage(await MeUsageAsync(q), 2_000_000_000_000_000_000, Limit, PeriodStart, ResetsAt);
    }
}
