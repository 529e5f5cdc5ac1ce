namespace Vpn.Entry.Tests.Sessions;

/// <summary>One message of a text/event-stream: an event (id, name, data) or a comment line (Comment set, the rest null).</summary>
public sealed record SseMessage(string? Id, string? Event, string? Data, string? Comment)
{
    public JsonElement Json => JsonDocument.Parse(Data ?? throw new InvalidOperationException("not an event: " + Comment)).RootElement.Clone();
}

/// <summary>
/// A client of GET /v1/sessions/current/events that parses the stream as it arrives (the SSE line format: "id:",
/// "event:", "data:", ": comment", a blank line ends an event; "retry:" is read and ignored). Every read has a generous
/// liveness bound instead of a timing assertion: a message that never comes fails the test, a slow one does not.
/// </summary>
public sealed class SseStream : IAsyncDisposable
{
    public static readonly TimeSpan Liveness = TimeSpan.FromSeconds(30);

    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;

    private SseStream(HttpResponseMessage response, Stream body)
    {
        _response = response;
        _reader = new StreamReader(body, Encoding.UTF8);
    }

    public HttpResponseMessage Response => _response;

    /// <summary>Opens the stream; the answer is returned as is when it is not 200 (Stream null).</summary>
    public static async Task<(HttpResponseMessage Response, SseStream? Stream)> OpenAsync(HttpClient client, HttpRequestMessage request)
    {
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return (response, null);
        }
        return (response, new SseStream(response, await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken)));
    }

    /// <summary>Opens a stream that must answer 200.</summary>
    public static async Task<SseStream> OpenOkAsync(HttpClient client, HttpRequestMessage request)
    {
        var (response, stream) = await OpenAsync(client, request);
        if (stream is null)
        {
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            response.Dispose();
            Assert.Fail($"expected 200 text/event-stream, got {(int)response.StatusCode}: {body}");
        }
        return stream;
    }

    /// <summary>The next message, or null when the server ended the stream.</summary>
    public async Task<SseMessage?> NextAsync()
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bound.CancelAfter(Liveness);
        string? id = null, name = null;
        StringBuilder? data = null;
        try
        {
            while (true)
            {
                var line = await _reader.ReadLineAsync(bound.Token);
                if (line is null)
                {
                    return null;
                }
                if (line.Length == 0)
                {
                    if (data is not null || id is not null)
                    {
                        return new SseMessage(id, name ?? "message", data?.ToString(), null);
                    }
                    continue;
                }
                if (line.StartsWith(':'))
                {
                    return new SseMessage(null, null, null, line[1..].TrimStart());
                }
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                var field = colon < 0 ? line : line[..colon];
                var value = colon < 0 ? "" : line[(colon + 1)..].TrimStart(' ');
                switch (field)
                {
                    case "id":
                        id = value;
                        break;
                    case "event":
                        name = value;
                        break;
                    case "data":
                        data = data is null ? new StringBuilder(value) : data.Append('\n').Append(value);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (bound.IsCancellationRequested && !TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no message on the event stream within {Liveness.TotalSeconds} s");
        }
    }

    /// <summary>The next event, skipping comments (keep-alives).</summary>
    public async Task<SseMessage> NextEventAsync()
    {
        while (true)
        {
            var message = await NextAsync() ?? throw new InvalidOperationException("the event stream ended");
            if (message.Comment is null)
            {
                return message;
            }
        }
    }

    /// <summary>Reads until the server ends the stream; the events (not comments) that came before.</summary>
    public async Task<IReadOnlyList<SseMessage>> ReadToEndAsync()
    {
        var events = new List<SseMessage>();
        while (await NextAsync() is { } message)
        {
            if (message.Comment is null)
            {
                events.Add(message);
            }
        }
        return events;
    }

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _response.Dispose();
        return ValueTask.CompletedTask;
    }
}
