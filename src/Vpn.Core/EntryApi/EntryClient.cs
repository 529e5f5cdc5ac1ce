using System.Net.Http.Json;
using System.Text.Json;
using Vpn.Contracts.Http;
using Vpn.Core.Reconciliation;
using Vpn.ServiceDefaults;

namespace Vpn.Core.EntryApi;

/// <summary>
/// Core's calls to entry's internal API (admin token in <c>x-admin-token</c>): the heartbeat and the desired peers of
/// this node. CORE_ENTRY_URL is <c>http(s)://host:port</c> or <c>unix:/path.sock</c> (HTTP/1.1 over a unix socket).
/// One long-lived client whose pooled connections are recycled, so DNS changes are picked up.
/// </summary>
public sealed class EntryClient : IDesiredStateSource, IDisposable
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan HeartbeatTimeout = TimeSpan.FromSeconds(5);

    // A node's whole desired set (up to 65,536 peers, ~10 MB of JSON) must fit; entry answers from one query.
    private static readonly TimeSpan DefaultFetchTimeout = TimeSpan.FromSeconds(20);

    // Entry's JSON conventions, and a repeated name ("node_id" twice, a peer with two "public_key"s) makes the answer
    // invalid rather than "last one wins": the set is checked as a whole and must mean one thing.
    // Strict: one spelling per value (no duplicate names, no numbers in strings), as entry writes it.
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        AllowDuplicateProperties = false,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict,
    };

    private readonly HttpClient _http;
    private readonly TimeSpan _fetchTimeout;
    private readonly Guid _nodeId;
    private readonly string _adminToken;

    public EntryClient(CoreOptions options)
        : this(options, DefaultFetchTimeout)
    {
    }

    internal EntryClient(CoreOptions options, TimeSpan fetchTimeout)
    {
        _fetchTimeout = fetchTimeout;
        ArgumentNullException.ThrowIfNull(options);
        if (options.EntryUrl is null || options.NodeId is null || string.IsNullOrEmpty(options.AdminToken))
        {
            throw new ArgumentException("CORE_ENTRY_URL, CORE_NODE_ID and ADMIN_API_TOKEN are required.", nameof(options));
        }
        _nodeId = options.NodeId.Value;
        _adminToken = options.AdminToken;
        _http = new HttpClient(CreateHandler(options.EntryUrl))
        {
            BaseAddress = BaseAddressFor(options.EntryUrl),
            Timeout = Timeout.InfiniteTimeSpan, // per call below
        };
    }

    /// <summary>Posts healthy + active peer count; returns entry's status code. Throws HttpRequestException or OperationCanceledException (timeout).</summary>
    public async Task<HttpStatusCode> PostHeartbeatAsync(bool healthy, int activePeerCount, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(HeartbeatTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("v1/internal/nodes/health", UriKind.Relative))
        {
            Content = JsonContent.Create(new NodeHeartbeatDto(_nodeId.ToString("D"), healthy, activePeerCount)),
        };
        request.Headers.Add("x-admin-token", _adminToken);
        using var response = await _http.SendAsync(request, timeout.Token);
        return response.StatusCode;
    }

    /// <summary>
    /// Posts one batch of session counters (at most <see cref="NodeUsageReportDto.MaxSessions"/>); true when entry
    /// answers entry's status (204: recorded). Throws HttpRequestException or OperationCanceledException (timeout).
    /// </summary>
    public async Task<HttpStatusCode> PostUsageAsync(IReadOnlyList<Usage.SessionUsage> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(HeartbeatTimeout);
        var body = new NodeUsageReportDto([.. batch.Select(u => new NodeSessionUsageDto(u.SessionId.ToString("D"), u.Generation, u.RxBytes, u.TxBytes))]);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"v1/internal/nodes/{_nodeId:D}/usage", UriKind.Relative))
        {
            Content = JsonContent.Create(body),
        };
        request.Headers.Add("x-admin-token", _adminToken);
        using var response = await _http.SendAsync(request, timeout.Token);
        return response.StatusCode;
    }

    public async Task<DesiredSnapshot> FetchAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_fetchTimeout);
        var path = new Uri($"v1/internal/nodes/{_nodeId:D}/peers", UriKind.Relative);
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("x-admin-token", _adminToken);
        NodePeerSetDto? body;
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new DesiredStateUnavailableException($"entry answered {(int)response.StatusCode} for the desired peers");
            }
            body = await response.Content.ReadFromJsonAsync<NodePeerSetDto>(Json, timeout.Token);
        }
        catch (HttpRequestException e)
        {
            throw new DesiredStateUnavailableException($"entry unreachable ({e.HttpRequestError})", e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DesiredStateUnavailableException("entry did not answer in time", e);
        }
        catch (JsonException e)
        {
            // The exception text may quote the body; only its position is reported.
            throw new DesiredStateUnavailableException($"entry answered malformed JSON (line {e.LineNumber}, byte {e.BytePositionInLine})", e);
        }
        catch (NotSupportedException e)
        {
            throw new DesiredStateUnavailableException("entry answered a body that is not JSON", e);
        }
        return Parse(body);
    }

    public void Dispose() => _http.Dispose();

    internal static Uri BaseAddressFor(Uri entryUrl) =>
        entryUrl.Scheme == UnixSocketEndpoint.Scheme
            ? new Uri("http://localhost/")
            : new Uri(entryUrl.GetLeftPart(UriPartial.Path).TrimEnd('/') + "/");

    internal static SocketsHttpHandler CreateHandler(Uri entryUrl)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = ConnectTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            AllowAutoRedirect = false,
        };
        return entryUrl.Scheme == UnixSocketEndpoint.Scheme ? handler.ConnectingTo(Uri.UnescapeDataString(entryUrl.AbsolutePath)) : handler;
    }

    /// <summary>Checks the whole answer; any problem rejects all of it.</summary>
    private DesiredSnapshot Parse(NodePeerSetDto? body)
    {
        if (body?.Peers is null || body.NodeId is null)
        {
            throw Invalid("node_id or peers missing");
        }
        if (!Guid.TryParse(body.NodeId, out var nodeId) || nodeId != _nodeId)
        {
            throw Invalid("the answer is for another node");
        }
        var sessions = new List<DesiredSession>(body.Peers.Count);
        var ids = new HashSet<Guid>();
        foreach (var peer in body.Peers)
        {
            if (peer is null || !Guid.TryParse(peer.SessionId, out var sessionId) || !ids.Add(sessionId))
            {
                throw Invalid("a peer has a missing, malformed or repeated session_id");
            }
            if (!WireGuardKey.TryParseBase64(peer.PublicKey, out var key) || key.IsZero)
            {
                throw Invalid($"session {sessionId} has no valid public_key");
            }
            var state = peer.State switch
            {
                "active" => DesiredSessionState.Active,
                "provisioning" => DesiredSessionState.Provisioning,
                _ => throw Invalid($"session {sessionId} has unknown state"),
            };
            IPAddress? address = null;
            if (peer.Address is not null && !TryParseHostAddress(peer.Address, out address))
            {
                throw Invalid($"session {sessionId} has an address that is not an IPv4 /32");
            }
            if (state == DesiredSessionState.Active && address is null)
            {
                throw Invalid($"active session {sessionId} has no address");
            }
            IPAddress? address6 = null;
            if (peer.AddressV6 is not null && !TryParseHostAddress6(peer.AddressV6, out address6))
            {
                throw Invalid($"session {sessionId} has an address_v6 that is not an IPv6 /128");
            }
            if (address6 is not null && address is null)
            {
                throw Invalid($"session {sessionId} has an address_v6 without an address");
            }
            if (peer.ClaimSeq is < 0)
            {
                throw Invalid($"session {sessionId} has a negative claim_seq");
            }
            Usage.SessionUsage? usage = null;
            if (peer.UsageGeneration is not null || peer.UsageRxBytes is not null || peer.UsageTxBytes is not null)
            {
                if (peer.UsageGeneration is not > 0 || peer.UsageRxBytes is not >= 0 || peer.UsageTxBytes is not >= 0)
                {
                    throw Invalid($"session {sessionId} has incomplete or negative usage counters");
                }
                usage = new Usage.SessionUsage(sessionId, peer.UsageGeneration.Value, peer.UsageRxBytes.Value, peer.UsageTxBytes.Value);
            }
            sessions.Add(new DesiredSession(sessionId, key, address, state, address6, (ulong)(peer.ClaimSeq ?? 0), usage));
        }
        return new DesiredSnapshot(body.GeneratedAt ?? DateTimeOffset.MinValue, sessions);
    }

    /// <summary>"10.64.0.2/32" (as core hands it out) or a bare IPv4 address.</summary>
    internal static bool TryParseHostAddress(string text, out IPAddress? address)
    {
        address = null;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0 && text.AsSpan(slash + 1) is not "32")
        {
            return false;
        }
        if (!IPAddress.TryParse(slash >= 0 ? text.AsSpan(0, slash) : text.AsSpan(), out var parsed)
            || parsed.AddressFamily != AddressFamily.InterNetwork
            || parsed.ToString() != (slash >= 0 ? text[..slash] : text))
        {
            return false;
        }
        address = parsed;
        return true;
    }

    /// <summary>"fd64:6400::2/128" (as core hands it out) or a bare IPv6 address, in canonical (RFC 5952) text, without a zone.</summary>
    internal static bool TryParseHostAddress6(string text, out IPAddress? address)
    {
        address = null;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0 && text.AsSpan(slash + 1) is not "128")
        {
            return false;
        }
        var host = slash >= 0 ? text[..slash] : text;
        if (!IPAddress.TryParse(host, out var parsed)
            || parsed.AddressFamily != AddressFamily.InterNetworkV6
            || parsed.ScopeId != 0
            || parsed.IsIPv4MappedToIPv6
            || parsed.ToString() != host)
        {
            return false;
        }
        address = parsed;
        return true;
    }

    private static DesiredStateUnavailableException Invalid(string why) => new($"entry answered an invalid desired set: {why}");
}
