namespace Vpn.Entry.Tests.Sessions;

/// <summary>
/// Issue 11 item 2: many parallel <c>replace_existing</c> starts of one customer who has a session. Each round must end
/// with exactly one live session, whose peer (and only it) the node holds for the device key, and every answer is a 201
/// or a 409 <c>session_conflict</c> — never a 502, never a customer left with nothing.
/// </summary>
public abstract class ReplaceStormTests(StoreKind store)
{
    private const int Rounds = 50;
    private const int Parallel = 10;

    [Fact]
    public async Task ParallelReplaceExisting_50Rounds_AlwaysExactlyOneSessionAndOnePeer()
    {
        await using var stack = await TestStack.StartAsync(store);
        var sessions = stack.EntryServices.GetRequiredService<ISessionStore>();
        var registry = stack.RegistryFor();
        var totals = new Dictionary<int, int>();
        for (var round = 0; round < Rounds; round++)
        {
            var c = await stack.SeedCustomerAsync();
            await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" }), 201);

            var answers = await Task.WhenAll(Enumerable.Range(0, Parallel).Select(async _ =>
            {
                using var response = await stack.Client.SendAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions",
                    new { device_id = c.DeviceId, region = "eu-west", replace_existing = true }));
                var body = await response.Content.ReadAsStringAsync();
                return ((int)response.StatusCode, JsonDocument.Parse(body).RootElement.Clone());
            }));

            foreach (var (status, _) in answers)
            {
                totals[status] = totals.GetValueOrDefault(status) + 1;
            }
            var unexpected = answers.Where(a => a.Item1 is not (201 or 409)).ToList();
            Assert.True(unexpected.Count == 0, $"round {round}: {string.Join("; ", unexpected.Select(a => $"{a.Item1} {a.Item2}"))}");
            Assert.All(answers.Where(a => a.Item1 == 409), a => Assert.Equal("session_conflict", a.Item2.GetProperty("code").GetString()));
            var started = answers.Where(a => a.Item1 == 201).Select(a => a.Item2.GetProperty("session_id").GetGuid()).ToHashSet();
            Assert.NotEmpty(started);

            // Exactly one live session, and it is one of those answered 201 (the last of them to be claimed).
            var current = await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
            var finalId = current.GetProperty("session_id").GetGuid();
            Assert.Contains(finalId, started);
            Assert.Equal(finalId, await sessions.GetLiveIdAsync(c.Id, default));

            // The node holds exactly one peer for the device key, the final session's, with its address.
            var deviceKey = WireGuardKey.ParseBase64(
                (await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, $"/v1/devices"), 200))
                .GetProperty("items")[0].GetProperty("public_key").GetString()!);
            var peers = (await stack.CoreDataplane.ReadAsync(default)).Peers.Where(p => p.PublicKey == deviceKey).ToList();
            Assert.Single(peers);
            var lease = registry.Find(finalId);
            Assert.NotNull(lease);
            Assert.Equal(deviceKey, lease.PublicKey);
            Assert.Equal(current.GetProperty("interface").GetProperty("address").GetString(), $"{lease.Address}/32");
            Assert.Contains(peers[0].AllowedIps, n => n.ToString() == $"{lease.Address}/32");
            // Every other session of the round has ended, in the database and on the node.
            foreach (var loser in started.Where(id => id != finalId))
            {
                Assert.Null(registry.Find(loser));
            }
        }
        // Whatever the interleaving, every start was answered as 201 or 409 (the 409s are the point of the storm).
        Assert.Equal(Rounds * Parallel, totals.Values.Sum());
        TestContext.Current.TestOutputHelper?.WriteLine($"{store}: " + string.Join(", ", totals.OrderBy(t => t.Key).Select(t => $"{t.Value} x {t.Key}")));
    }
}

public sealed class InMemoryReplaceStormTests() : ReplaceStormTests(StoreKind.InMemory);

public sealed class PostgresReplaceStormTests() : ReplaceStormTests(StoreKind.Postgres);
