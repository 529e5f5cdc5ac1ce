using System.Net.Http.Headers;
using System.Text.Json;

namespace Vpn.EndToEnd;

/// <summary>A response read to the end, so it can be asserted on and printed after the fact.</summary>
public sealed partial record EntryResponse(string Request, HttpStatusCode Status, string? ContentType, string Body)
{
    private JsonNode? _json;

    /// <summary>The body as JSON; throws with the whole response when it is not JSON.</summary>
    public JsonNode Json
    {
        get
        {
            if (_json is not null)
            {
                return _json;
            }
            try
            {
                return _json = JsonNode.Parse(Body) ?? throw new JsonException("null body");
            }
            catch (JsonException e)
            {
                throw new InvalidOperationException($"Not JSON: {Describe()}", e);
            }
        }
    }

    /// <summary>A string property of the JSON body; throws with the whole response when missing.</summary>
    public string Text(string property) =>
        Json[property]?.GetValueKind() == JsonValueKind.String
            ? Json[property]!.GetValue<string>()
            : throw new InvalidOperationException($"No string '{property}' in {Describe()}");

    /// <summary>The exchange for messages; a <c>session_key</c> in the body (a bearer secret) is redacted.</summary>
    public string Describe() => $"{Request} → {(int)Status} {Status} [{ContentType}] {SessionKeyValue().Replace(Body, "$1(redacted)\"")}";

    [System.Text.RegularExpressions.GeneratedRegex("(\"session_key\"\\s*:\\s*\")[^\"]*\"")]
    private static partial System.Text.RegularExpressions.Regex SessionKeyValue();
}

/// <summary>
/// HTTP client for the entry process: admin calls carry <c>x-admin-token</c>, customer calls the legacy
/// <c>x-customer-id</c> header (enabled with APP_ENV=development). Bodies are serialized snake_case.
/// </summary>
public sealed class EntryClient : IDisposable
{
    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    private readonly string _adminToken;

    public EntryClient(Uri baseAddress, string adminToken)
    {
        _adminToken = adminToken;
        Http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public HttpClient Http { get; }

    public Uri BaseAddress => Http.BaseAddress!;

    public Task<EntryResponse> AdminAsync(HttpMethod method, string path, object? body = null, CancellationToken cancellationToken = default) =>
        SendAsync(method, path, body, new Dictionary<string, string> { ["x-admin-token"] = _adminToken }, cancellationToken);

    public Task<EntryResponse> CustomerAsync(Guid customerId, HttpMethod method, string path, object? body = null,
        IDictionary<string, string>? headers = null, CancellationToken cancellationToken = default)
    {
        var all = new Dictionary<string, string>(headers ?? new Dictionary<string, string>()) { ["x-customer-id"] = customerId.ToString() };
        return SendAsync(method, path, body, all, cancellationToken);
    }

    public async Task<EntryResponse> SendAsync(HttpMethod method, string path, object? body = null,
        IDictionary<string, string>? headers = null, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(method, path);
        string? json = null;
        if (body is not null)
        {
            json = JsonSerializer.Serialize(body, JsonOptions);
            request.Content = new StringContent(json, Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        }
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        var description = $"{method} {path}{(json is null ? "" : " " + json)}";
        using var response = await Http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        return new EntryResponse(description, response.StatusCode, response.Content.Headers.ContentType?.MediaType, text);
    }

    public void Dispose() => Http.Dispose();
}
