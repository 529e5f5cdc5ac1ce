using System.Net.Http.Headers;
using Vpn.Cli.Output;

namespace Vpn.Cli;

/// <summary>One answer of entry read to the end: its status and body (JSON when it is JSON).</summary>
public sealed record EntryAnswer(HttpStatusCode Status, string? ContentType, string Body)
{
    /// <summary>The body's bytes exactly as received (what a signature covers).</summary>
    public byte[] RawBody { get; init; } = [];

    public bool IsSuccess => (int)Status is >= 200 and < 300;

    public JsonNode? Json
    {
        get
        {
            try
            {
                return Body.Length == 0 ? null : JsonNode.Parse(Body);
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }

    /// <summary>The JSON object of a success, or the answer's problem as an exception.</summary>
    public JsonObject EnsureObject() =>
        IsSuccess ? Json as JsonObject ?? throw new CliException(ExitCodes.Unavailable, $"entry answered {(int)Status} without a JSON object")
            : throw ApiProblemException.From(Status, ContentType, Body);
}

/// <summary>
/// HTTP to entry: the admin token as <c>x-admin-token</c> or a customer's access token as Bearer. No answer at all
/// (refused, reset, timeout) is a <see cref="CliException"/> with <see cref="ExitCodes.Unavailable"/> that names the
/// URL but never a credential.
/// </summary>
public sealed class EntryHttp : IDisposable
{
    private readonly HttpClient _http;
    private readonly string? _adminToken;

    public EntryHttp(Uri baseAddress, string? adminToken, HttpMessageHandler? handler, TimeSpan timeout)
    {
        // No redirects: .NET drops Authorization on one but would carry x-admin-token to wherever a 3xx points.
        _http = handler is null ? new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) : new HttpClient(handler, disposeHandler: false);
        _http.BaseAddress = baseAddress;
        _http.Timeout = timeout;
        _adminToken = adminToken;
    }

    public Uri BaseAddress => _http.BaseAddress!;

    /// <summary>Bearer token for customer calls (the reference client).</summary>
    public string? BearerToken { get; set; }

    public Task<EntryAnswer> GetAsync(string path, CancellationToken cancellationToken) => SendAsync(HttpMethod.Get, path, null, null, cancellationToken);

    public Task<EntryAnswer> PostAsync(string path, JsonNode? body, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? headers = null) =>
        SendAsync(HttpMethod.Post, path, body, headers, cancellationToken);

    public async Task<EntryAnswer> SendAsync(HttpMethod method, string path, JsonNode? body, IReadOnlyDictionary<string, string>? headers,
        CancellationToken cancellationToken)
    {
        using var request = NewRequest(method, path, body, headers);
        try
        {
            using var response = await _http.SendAsync(request, cancellationToken);
            var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            return new EntryAnswer(response.StatusCode, response.Content.Headers.ContentType?.MediaType, Encoding.UTF8.GetString(bytes)) { RawBody = bytes };
        }
        catch (Exception e) when (IsNoAnswer(e, cancellationToken))
        {
            throw NoAnswer(path, e);
        }
    }

    /// <summary>GET streamed into <paramref name="destination"/> (the CSV export); a non-success answer throws its problem.</summary>
    public async Task<long> DownloadAsync(string path, Stream destination, CancellationToken cancellationToken)
    {
        using var request = NewRequest(HttpMethod.Get, path, null, null);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw ApiProblemException.From(response.StatusCode, response.Content.Headers.ContentType?.MediaType,
                    await response.Content.ReadAsStringAsync(cancellationToken));
            }
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var before = destination.CanSeek ? destination.Position : 0;
            await body.CopyToAsync(destination, cancellationToken);
            return destination.CanSeek ? destination.Position - before : -1;
        }
        catch (Exception e) when (IsNoAnswer(e, cancellationToken))
        {
            throw NoAnswer(path, e);
        }
    }

    /// <summary>
    /// GET read line by line as it arrives (Server-Sent Events) until the body ends or <paramref name="onLine"/> answers
    /// false. Answers the status (204: nothing to stream) and whether the body ended by itself; a 4xx/5xx throws its
    /// problem; a connection lost mid-stream answers (200, false) so the caller can resume.
    /// </summary>
    public async Task<(HttpStatusCode Status, bool Ended)> ReadLinesAsync(string path, IReadOnlyDictionary<string, string>? headers, Func<string, bool> onLine,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onLine);
        using var request = NewRequest(HttpMethod.Get, path, null, headers);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (Exception e) when (IsNoAnswer(e, cancellationToken))
        {
            throw NoAnswer(path, e);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw ApiProblemException.From(response.StatusCode, response.Content.Headers.ContentType?.MediaType,
                    await response.Content.ReadAsStringAsync(cancellationToken));
            }
            if (response.StatusCode == HttpStatusCode.NoContent)
            {
                return (response.StatusCode, true);
            }
            try
            {
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken), Encoding.UTF8);
                while (await reader.ReadLineAsync(cancellationToken) is { } line)
                {
                    if (!onLine(line))
                    {
                        return (response.StatusCode, false);
                    }
                }
                return (response.StatusCode, true);
            }
            catch (Exception e) when (e is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
            {
                return (response.StatusCode, false);
            }
        }
    }

    private HttpRequestMessage NewRequest(HttpMethod method, string path, JsonNode? body, IReadOnlyDictionary<string, string>? headers)
    {
        var request = new HttpRequestMessage(method, path.TrimStart('/'));
        if (_adminToken is not null)
        {
            request.Headers.TryAddWithoutValidation("x-admin-token", _adminToken);
        }
        if (BearerToken is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", BearerToken);
        }
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        }
        return request;
    }

    private static bool IsNoAnswer(Exception e, CancellationToken cancellationToken) =>
        e is HttpRequestException || e is TaskCanceledException && !cancellationToken.IsCancellationRequested;

    private CliException NoAnswer(string path, Exception e)
    {
        var why = e is TaskCanceledException ? $"no answer within {_http.Timeout.TotalSeconds:0} s"
            : e is HttpRequestException { HttpRequestError: var error } && error != HttpRequestError.Unknown ? SplitWords(error.ToString()) : e.Message;
        return new CliException(ExitCodes.Unavailable, $"no answer from entry at {new Uri(BaseAddress, path.TrimStart('/')).GetLeftPart(UriPartial.Path)}: {why}");
    }

    private static string SplitWords(string pascal) =>
        string.Concat(pascal.Select((c, i) => i > 0 && char.IsUpper(c) ? " " + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));

    public void Dispose() => _http.Dispose();
}
