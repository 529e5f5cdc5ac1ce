namespace Vpn.Entry.Tests.Subscriptions;

/// <summary>The admin book of customers (list, count, export, history) through the real HTTP pipeline, on each store.</summary>
public abstract class SubscriptionReportTests(StoreKind store)
{
    protected static readonly string[] Statuses = ["trialing", "active", "past_due", "canceled", "expired"];

    [Fact]
    public async Task List_WalkWhileAnotherTaskInserts_EveryPreexistingRowExactlyOnce()
    {
        await using var stack = await TestStack.StartAsync(store);
        await CreatePlanAsync(stack, "basic", "Basic");
        var preexisting = new List<Guid>();
        for (var i = 0; i < 120; i++)
        {
            preexisting.Add(await SetAsync(stack, Guid.NewGuid(), "basic", Statuses[i % Statuses.Length]));
        }

        // The writer adds new customers and re-subscribes existing ones (close + insert of their open row) until the
        // walk is done; the walker waits for at least two writes between pages, so pages and writes interleave.
        var writes = 0;
        using var walkDone = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            var inserted = new List<Guid>();
            for (var i = 0; !walkDone.IsCancellationRequested; i++)
            {
                var customer = i % 3 == 2 ? preexisting[i % preexisting.Count] : Guid.NewGuid();
                await SetAsync(stack, customer, "basic", Statuses[i % Statuses.Length]);
                if (customer != preexisting[i % preexisting.Count])
                {
                    inserted.Add(customer);
                }
                Interlocked.Increment(ref writes);
            }
            return inserted;
        });

        var seen = new List<Guid>();
        var pages = 0;
        string? cursor = null;
        do
        {
            var before = Volatile.Read(ref writes);
            var page = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions?limit=7" + (cursor is null ? "" : "&cursor=" + cursor)), 200);
            var items = page.GetProperty("items").EnumerateArray().Select(s => s.GetProperty("customer_id").GetGuid()).ToList();
            Assert.InRange(items.Count, 0, 7);
            seen.AddRange(items);
            cursor = page.GetProperty("next_cursor").GetString();
            pages++;
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (Volatile.Read(ref writes) < before + 2 && DateTime.UtcNow < deadline && !writer.IsCompleted)
            {
                await Task.Delay(5);
            }
        }
        while (cursor is not null);
        await walkDone.CancelAsync();
        var insertedDuringWalk = await writer;

        Assert.True(pages >= 120 / 7, $"only {pages} pages");
        Assert.True(insertedDuringWalk.Count > 10, $"only {insertedDuringWalk.Count} rows inserted during the walk");
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.True(IsAscending(seen), "pages are not in customer_id order");
        var counts = seen.CountBy(id => id).ToDictionary();
        var missing = preexisting.Where(id => !counts.ContainsKey(id)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} pre-existing rows missing, e.g. {missing.FirstOrDefault()}");
        Assert.All(preexisting, id => Assert.Equal(1, counts[id]));
    }

    [Fact]
    public async Task List_FiltersCombine_PagesCountAndExportAgree()
    {
        await using var stack = await TestStack.StartAsync(store);
        await CreatePlanAsync(stack, "basic", "Basic");
        await CreatePlanAsync(stack, "pro", "Pro");
        var current = new Dictionary<Guid, (string Plan, string Status)>();
        for (var i = 0; i < 45; i++)
        {
            var customer = Guid.NewGuid();
            var plan = i % 2 == 0 ? "basic" : "pro";
            var status = Statuses[i % Statuses.Length];
            if (i % 4 == 0)
            {
                // An older period on the other plan and status: only the open row may be listed.
                await SetAsync(stack, customer, i % 2 == 0 ? "pro" : "basic", Statuses[(i + 1) % Statuses.Length]);
            }
            await SetAsync(stack, customer, plan, status);
            current[customer] = (plan, status);
        }

        string?[][] filters = [[null, null], ["active", null], [null, "pro"], ["active", "pro"], ["trialing", "basic"], ["expired", "pro"], [null, "nope"]];
        foreach (var filter in filters)
        {
            var (status, plan) = (filter[0], filter[1]);
            var query = string.Join('&', new[] { status is null ? null : "status=" + status, plan is null ? null : "plan_code=" + plan }.OfType<string>());
            var expected = current.Where(c => (status is null || c.Value.Status == status) && (plan is null || c.Value.Plan == plan))
                .Select(c => c.Key).Order(Comparer<Guid>.Create(SubscriptionCursor.Compare)).ToList();

            var walked = new List<JsonElement>();
            string? cursor = null;
            do
            {
                var page = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/subscriptions?limit=4&{query}" + (cursor is null ? "" : "&cursor=" + cursor)), 200);
                walked.AddRange(page.GetProperty("items").EnumerateArray());
                cursor = page.GetProperty("next_cursor").GetString();
            }
            while (cursor is not null);
            Assert.Equal(expected, walked.Select(s => s.GetProperty("customer_id").GetGuid()));
            Assert.All(walked, s =>
            {
                var id = s.GetProperty("customer_id").GetGuid();
                Assert.Equal(current[id].Status, s.GetProperty("status").GetString());
                Assert.Equal(current[id].Plan, s.GetProperty("plan_code").GetString());
                Assert.Equal(JsonValueKind.Null, s.GetProperty("ended_at").ValueKind);
            });

            var count = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions/count?" + query), 200);
            Assert.Equal(expected.Count, count.GetProperty("count").GetInt64());

            var csv = StrictCsv.Parse(await GetExportAsync(stack, "/v1/admin/subscriptions/export?" + query));
            Assert.Equal(expected, csv.Skip(1).Select(r => Guid.Parse(r[0])));
        }
    }

    [Fact]
    public async Task List_DefaultLimit_FiftyThenRestWithNullCursorAtEnd()
    {
        await using var stack = await TestStack.StartAsync(store);
        await CreatePlanAsync(stack, "basic", "Basic");
        for (var i = 0; i < 53; i++)
        {
            await SetAsync(stack, Guid.NewGuid(), "basic", "active");
        }

        var first = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions"), 200);
        Assert.Equal(50, first.GetProperty("items").GetArrayLength());
        var cursor = first.GetProperty("next_cursor").GetString();
        Assert.NotNull(cursor);
        var second = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions?cursor=" + cursor), 200);
        Assert.Equal(3, second.GetProperty("items").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, second.GetProperty("next_cursor").ValueKind);

        // A page that ends exactly at the last row says so: no empty extra page.
        var exact = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions?limit=53"), 200);
        Assert.Equal(53, exact.GetProperty("items").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, exact.GetProperty("next_cursor").ValueKind);
        var all = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions?limit=500"), 200);
        Assert.Equal(53, all.GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task ReportEndpoints_InvalidQuery_Return400InvalidRequest()
    {
        await using var stack = await TestStack.StartAsync(store);
        var versionTwo = new byte[17];
        versionTwo[0] = 2;
        var otherVersion = Convert.ToBase64String(versionTwo).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var valid = SubscriptionCursor.Encode(Guid.NewGuid());
        string[] paths =
        [
            "/v1/admin/subscriptions?cursor=garbage!",
            "/v1/admin/subscriptions?cursor=AQ",
            "/v1/admin/subscriptions?cursor=" + otherVersion,
            "/v1/admin/subscriptions?cursor=" + valid + "AAAA",
            "/v1/admin/subscriptions?cursor=" + valid[..^2],
            "/v1/admin/subscriptions?cursor=" + new string('A', 5000),
            "/v1/admin/subscriptions?cursor=%27%20or%201%3D1--",
            "/v1/admin/subscriptions?limit=0",
            "/v1/admin/subscriptions?limit=501",
            "/v1/admin/subscriptions?limit=-1",
            "/v1/admin/subscriptions?limit=abc",
            "/v1/admin/subscriptions?limit=1.5",
            "/v1/admin/subscriptions?limit=99999999999999999999",
            "/v1/admin/subscriptions?status=free",
            "/v1/admin/subscriptions?status=ACTIVE",
            "/v1/admin/subscriptions?status=active&status=canceled",
            "/v1/admin/subscriptions?plan_code=bad%20code",
            "/v1/admin/subscriptions?plan_code=%27%3B%20drop%20table%20plans--",
            "/v1/admin/subscriptions/count?status=free",
            "/v1/admin/subscriptions/count?plan_code=a%2Cb",
            "/v1/admin/subscriptions/export?status=free",
            "/v1/admin/subscriptions/export?plan_code=%3D1%2B1",
            "/v1/admin/subscriptions/not-a-uuid/history",
        ];
        var failures = new List<string>();
        foreach (var path in paths)
        {
            using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, path));
            var text = await response.Content.ReadAsStringAsync();
            var code = response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                ? JsonDocument.Parse(text).RootElement.GetProperty("code").GetString() : null;
            if (response.StatusCode != HttpStatusCode.BadRequest || code != "invalid_request")
            {
                failures.Add($"{path}: {(int)response.StatusCode} {code} {text[..Math.Min(200, text.Length)]}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));

        // A well-formed cursor past every row is a valid, empty last page.
        var past = SubscriptionCursor.Encode(Guid.Parse("ffffffff-ffff-ffff-ffff-ffffffffffff"));
        var empty = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions?cursor=" + past), 200);
        Assert.Equal(0, empty.GetProperty("items").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, empty.GetProperty("next_cursor").ValueKind);
    }

    [Fact]
    public async Task Export_AwkwardPlanNames_Rfc4180QuotedAndFormulaGuarded()
    {
        await using var stack = await TestStack.StartAsync(store);
        // Through the store: the admin API refuses control characters in names, older or imported data may hold them.
        var plans = stack.EntryServices.GetRequiredService<IPlanStore>();
        var names = new Dictionary<string, string>
        {
            ["plain"] = "Plain",
            ["comma"] = "Pro, yearly",
            ["quote"] = "The \"best\" plan",
            ["newline"] = "Two\r\nlines\nand\r a \"quote\", too",
            ["formula"] = "=HYPERLINK(\"http://x\",\"click\")",
            ["minus"] = "-2+3",
            ["at"] = "@SUM(A1)",
            ["plus"] = "+1",
            ["unicode"] = "Básico – 日本",
        };
        var customers = new Dictionary<Guid, string>();
        foreach (var (code, name) in names)
        {
            await plans.UpsertPlanAsync(new Plan(code, name, 3, ["eu-west", "us-east"]), default);
            customers[await SetAsync(stack, Guid.NewGuid(), code, "active")] = code;
        }

        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions/export"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("utf-8", response.Content.Headers.ContentType?.CharSet);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.False(bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble), "no byte order mark");
        var text = Encoding.UTF8.GetString(bytes);
        Assert.StartsWith(SubscriptionCsv.Header + "\r\n", text, StringComparison.Ordinal);
        Assert.Contains("\"The \"\"best\"\" plan\"", text, StringComparison.Ordinal);
        Assert.Contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"click\"\")\"", text, StringComparison.Ordinal);
        Assert.Contains(",'@SUM(A1),", text, StringComparison.Ordinal);

        var rows = StrictCsv.Parse(text);
        Assert.Equal(customers.Count + 1, rows.Count);
        Assert.All(rows, r => Assert.Equal(8, r.Length));
        foreach (var row in rows.Skip(1))
        {
            var code = customers[Guid.Parse(row[0])];
            var name = names[code];
            Assert.Equal(code, row[1]);
            Assert.Equal(name[0] is '=' or '+' or '-' or '@' ? "'" + name : name, row[2]);
            Assert.Equal(new[] { "active", "3", "eu-west;us-east" }, row[3..6]);
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$", row[6]);
            Assert.Equal("", row[7]);
        }
    }

    [Fact]
    public async Task History_ThreePeriods_OldestFirstWithOnlyLastOpen()
    {
        await using var stack = await TestStack.StartAsync(store);
        await CreatePlanAsync(stack, "basic", "Basic");
        await CreatePlanAsync(stack, "pro", "Pro");
        var customer = Guid.NewGuid();
        await SetAsync(stack, customer, "basic", "trialing");
        await SetAsync(stack, customer, "pro", "active");
        await SetAsync(stack, customer, "pro", "canceled");
        await SetAsync(stack, Guid.NewGuid(), "basic", "active");

        var history = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/subscriptions/{customer}/history"), 200);
        var items = history.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(new[] { "trialing", "active", "canceled" }, items.Select(i => i.GetProperty("status").GetString()));
        Assert.Equal(new[] { "basic", "pro", "pro" }, items.Select(i => i.GetProperty("plan_code").GetString()));
        Assert.All(items, i => Assert.Equal(customer, i.GetProperty("customer_id").GetGuid()));
        var started = items.Select(i => i.GetProperty("started_at").GetDateTimeOffset()).ToList();
        Assert.Equal(started.Order(), started);
        Assert.NotEqual(JsonValueKind.Null, items[0].GetProperty("ended_at").ValueKind);
        Assert.NotEqual(JsonValueKind.Null, items[1].GetProperty("ended_at").ValueKind);
        Assert.Equal(JsonValueKind.Null, items[2].GetProperty("ended_at").ValueKind);
        Assert.Equal(items[1].GetProperty("ended_at").GetDateTimeOffset(), items[2].GetProperty("started_at").GetDateTimeOffset());

        // The listing shows the latest snapshot, whatever its status; the single-customer route still answers.
        var listed = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions?status=canceled"), 200);
        Assert.Equal(customer, Assert.Single(listed.GetProperty("items").EnumerateArray()).GetProperty("customer_id").GetGuid());
        var latest = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/subscriptions/{customer}"), 200);
        Assert.Equal("canceled", latest.GetProperty("status").GetString());

        var none = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/subscriptions/{Guid.NewGuid()}/history"), 404);
        Assert.Equal("subscription_not_found", none.GetProperty("code").GetString());
    }

    [Fact]
    public async Task ReportEndpoints_WithoutAdminToken_401Unauthorized()
    {
        await using var stack = await TestStack.StartAsync(store);
        await CreatePlanAsync(stack, "basic", "Basic");
        var customer = await SetAsync(stack, Guid.NewGuid(), "basic", "active");
        string[] paths =
        [
            "/v1/admin/subscriptions",
            "/v1/admin/subscriptions?limit=5",
            "/v1/admin/subscriptions/count",
            "/v1/admin/subscriptions/export",
            $"/v1/admin/subscriptions/{customer}/history",
        ];
        foreach (var path in paths)
        {
            foreach (var (header, value) in new[] { ("", ""), ("x-admin-token", "wrong"), ("x-admin-token", ""), ("x-customer-id", customer.ToString()) })
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, path);
                if (header.Length > 0)
                {
                    request.Headers.TryAddWithoutValidation(header, value);
                }
                var problem = await stack.SendJsonAsync(request, 401);
                Assert.Equal("unauthorized", problem.GetProperty("code").GetString());
            }
        }
    }

    [Fact]
    public async Task LiteralSegments_CountAndExport_WinOverCustomerIdRoute()
    {
        await using var stack = await TestStack.StartAsync(store);
        await CreatePlanAsync(stack, "basic", "Basic");
        var customer = await SetAsync(stack, Guid.NewGuid(), "basic", "past_due");

        var count = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions/count"), 200);
        Assert.Equal(1, count.GetProperty("count").GetInt64());
        using var export = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions/export"));
        Assert.Equal("text/csv", export.Content.Headers.ContentType?.MediaType);
        var latest = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/subscriptions/{customer}"), 200);
        Assert.Equal("past_due", latest.GetProperty("status").GetString());
        var bad = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/subscriptions/abc"), 400);
        Assert.Equal("invalid_request", bad.GetProperty("code").GetString());
    }

    protected static async Task CreatePlanAsync(TestStack stack, string code, string name) =>
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/plans", new { code, name, max_devices = 3, allowed_regions = new[] { "eu-west" } }), 200);

    protected static async Task<Guid> SetAsync(TestStack stack, Guid customer, string plan, string status)
    {
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = customer, plan_code = plan, status }), 200);
        return customer;
    }

    protected static async Task<string> GetExportAsync(TestStack stack, string path)
    {
        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, path), HttpCompletionOption.ResponseHeadersRead);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {text}");
        return text;
    }

    protected static bool IsAscending(IReadOnlyList<Guid> ids)
    {
        for (var i = 1; i < ids.Count; i++)
        {
            if (string.CompareOrdinal(ids[i - 1].ToString(), ids[i].ToString()) >= 0)
            {
                return false;
            }
        }
        return true;
    }
}

public sealed class InMemorySubscriptionReportTests() : SubscriptionReportTests(StoreKind.InMemory);
