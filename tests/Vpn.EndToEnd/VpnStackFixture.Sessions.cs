namespace Vpn.EndToEnd;

/// <summary>A customer with an active e2e subscription and one registered device whose private key the test holds.</summary>
public sealed record TestDevice(Guid CustomerId, WireGuardKeys Keys, string DeviceId);

/// <summary>
/// The session the client namespace's WireGuard device is configured from: its IPv4 prefix, and every prefix of the
/// session as the node's <c>wg show allowed-ips</c> lists them (<see cref="VpnStackFixture.ReadNodePeersAsync"/>).
/// </summary>
public sealed record ClientSession(TestDevice Device, Guid SessionId, string Address, string AllowedIps);

// entry's readiness, customers with devices, session starts (with the documented retries), and the client namespace
// configured from a session and checked for traffic.
public partial class VpnStackFixture
{
    // ---------------------------------------------------------------- entry

    /// <summary>GET /readyz: the status code, or null when entry does not answer.</summary>
    public async Task<HttpStatusCode?> ReadyzAsync(CancellationToken cancellationToken = default)
    {
        using var probe = new HttpClient { BaseAddress = EntryBaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var response = await probe.GetAsync("/readyz", cancellationToken);
            return response.StatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    // ---------------------------------------------------------------- sessions

    /// <summary>A new subscribed customer with one device registered under <paramref name="keys"/>.</summary>
    public async Task<TestDevice> CreateCustomerWithDeviceAsync(WireGuardKeys keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var customer = await CreateSubscribedCustomerAsync(cancellationToken);
        var device = await ExpectStatusAsync(
            await EntryClient.CustomerAsync(customer, HttpMethod.Post, "/v1/devices", new { Name = "e2e-device", keys.PublicKey }, cancellationToken: cancellationToken),
            HttpStatusCode.Created);
        return new TestDevice(customer, keys, device.Text("id"));
    }

    public async Task<IReadOnlyList<TestDevice>> CreateCustomersWithDevicesAsync(int count, CancellationToken cancellationToken = default)
    {
        var keys = await WireGuardKeys.GenerateManyAsync(count);
        var devices = new List<TestDevice>(count);
        foreach (var k in keys)
        {
            devices.Add(await CreateCustomerWithDeviceAsync(k, cancellationToken));
        }
        return devices;
    }

    /// <summary>POST /v1/sessions for the device, whatever the answer.</summary>
    public Task<EntryResponse> StartSessionAsync(TestDevice device, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        return EntryClient.CustomerAsync(device.CustomerId, HttpMethod.Post, "/v1/sessions",
            new { device.DeviceId, Region = VpnStackFixture.Region }, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// POST /v1/sessions until 201, retrying only the documented transient answers (502 node_unavailable, 503
    /// no_nodes_available_in_region while the node's heartbeat catches up) within <paramref name="budget"/>.
    /// Any other answer, or no 201 in time, fails with every attempt listed.
    /// </summary>
    public async Task<(EntryResponse Session, string Attempts)> StartSessionUntilCreatedAsync(TestDevice device, TimeSpan budget,
        CancellationToken cancellationToken = default)
    {
        var attempts = new StringBuilder();
        var watch = Stopwatch.StartNew();
        while (true)
        {
            EntryResponse response;
            try
            {
                response = await StartSessionAsync(device, cancellationToken);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                attempts.AppendLine($"[{watch.Elapsed.TotalSeconds:0.0}s] no answer: {e.Message}");
                if (watch.Elapsed > budget)
                {
                    await FailAsync($"POST /v1/sessions never answered 201 within {budget.TotalSeconds:0}s:\n{attempts}");
                }
                await Task.Delay(500, cancellationToken);
                continue;
            }
            if (response.Status == HttpStatusCode.Created)
            {
                return (response, attempts.ToString());
            }
            attempts.AppendLine($"[{watch.Elapsed.TotalSeconds:0.0}s] {WithoutSessionKey(response)}");
            if (response.Status is not (HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable) || watch.Elapsed > budget)
            {
                await FailAsync($"POST /v1/sessions did not answer 201 (only 502/503 are retried, for {budget.TotalSeconds:0}s):\n{attempts}");
            }
            await Task.Delay(500, cancellationToken);
        }
    }

    /// <summary>A response for messages (<see cref="EntryResponse.Describe"/> redacts the session key).</summary>
    public static string WithoutSessionKey(EntryResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        return response.Describe();
    }

    // ---------------------------------------------------------------- the client

    /// <summary>Configures the client namespace from the session's wg-quick text (as an app would) and remembers it.</summary>
    public async Task UseClientSessionAsync(TestDevice device, EntryResponse session)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(session);
        var text = session.Text("wireguard_config");
        WgQuickConfig config;
        try
        {
            config = WgQuickConfig.Parse(text);
        }
        catch (FormatException e)
        {
            await FailAsync($"wireguard_config is not a valid wg-quick file ({e.Message}):\n{text}");
            throw;
        }
        await Lab.ConfigureClientAsync(config.WithPrivateKey(device.Keys.PrivateKey));
        CurrentClient = new ClientSession(device, Guid.Parse(session.Text("session_id")),
            config.Interface.Addresses.Single(a => a.Contains('.', StringComparison.Ordinal)), AllowedIps(config.Interface.Addresses));
        Step($"client configured from session {CurrentClient.SessionId} ({CurrentClient.Address}, device {device.Keys.PublicKey})");
    }

    /// <summary>Keeps the client's session if the database still has it active; otherwise starts and applies a new one.</summary>
    public async Task EnsureClientSessionAsync(CancellationToken cancellationToken = default)
    {
        if (CurrentClient is { } current
            && (await SessionsOfCustomerAsync(current.Device.CustomerId, cancellationToken)).Any(s => s.Id == current.SessionId && s.State == "active"))
        {
            return;
        }
        var device = (await CreateCustomersWithDevicesAsync(1, cancellationToken))[0];
        var (session, _) = await StartSessionUntilCreatedAsync(device, TimeSpan.FromSeconds(60), cancellationToken);
        await UseClientSessionAsync(device, session);
    }

    /// <summary>
    /// The client reaches inet through the tunnel and inet sees the node's NATed address; retried within
    /// <paramref name="budget"/> (a client whose node lost its session re-handshakes only after WireGuard's ~15 s timers).
    /// Returns how long it took.
    /// </summary>
    public async Task<TimeSpan> ExpectClientTrafficAsync(string situation, TimeSpan budget, CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        var (ok, body, attempts) = await Lab.ClientCurlUntilSuccessAsync(budget, cancellationToken);
        if (!ok)
        {
            await FailAsync($"{situation}: client ({CurrentClient?.Address ?? "unconfigured"}) → {VpnLab.InetUrl} through the tunnel failed for " +
                $"{budget.TotalSeconds:0}s:\n{attempts}");
        }
        if (body != VpnLab.NodeInetSideIp)
        {
            await FailAsync($"{situation}: inet saw source '{body}', expected the node's NATed address {VpnLab.NodeInetSideIp}.");
        }
        return watch.Elapsed;
    }

    /// <summary>One GET right now (no retry): true when it got through, NATed.</summary>
    public async Task<(bool Ok, string Detail)> ClientGetOnceAsync(TimeSpan maxTime)
    {
        var result = await Lab.ClientCurlAsync(maxTime);
        var body = result.StandardOutput.Trim();
        return (result.ExitCode == 0 && body == VpnLab.NodeInetSideIp,
            result.ExitCode == 0 ? $"body '{body}'" : $"curl exit {result.ExitCode}: {result.StandardError.Trim()}");
    }

    /// <summary>Elapsed seconds for test output.</summary>
    public static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";
}
