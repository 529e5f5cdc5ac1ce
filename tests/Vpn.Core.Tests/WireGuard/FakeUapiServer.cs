namespace Vpn.Core.Tests.WireGuard;

/// <summary>
/// A stand-in for a device's UAPI socket: accepts one connection, records the request bytes up to the
/// blank line that ends it, answers with canned bytes and (like wireguard-go) keeps the connection open
/// unless told to close, so a client that waits for end-of-stream hangs.
/// </summary>
internal sealed class FakeUapiServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly string _directory;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task<byte[]> _request;

    private FakeUapiServer(string? response, bool closeAfterResponse, int? answerAfterBytes)
    {
        // Short path: sun_path holds at most 107 bytes.
        _directory = Path.Combine(Path.GetTempPath(), $"uapi-{Guid.NewGuid():N}"[..17]);
        Directory.CreateDirectory(_directory);
        SocketPath = Path.Combine(_directory, "wg.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(1);
        _request = ServeAsync(response is null ? null : Encoding.ASCII.GetBytes(response), closeAfterResponse, answerAfterBytes, _stop.Token);
    }

    public string SocketPath { get; }

    /// <summary>The bytes received, through the request's terminating blank line.</summary>
    public Task<byte[]> Request => _request;

    public static FakeUapiServer Start(string response, bool closeAfterResponse = false) => new(response, closeAfterResponse, null);

    /// <summary>
    /// Answers and closes once <paramref name="bytes"/> have arrived, without reading the rest, as
    /// wireguard-go does when it rejects a line in the middle of a set.
    /// </summary>
    public static FakeUapiServer StartRejectingEarly(string response, int bytes) => new(response, closeAfterResponse: true, bytes);

    /// <summary>Accepts and reads the request but never answers, as a hung device would; the connection stays open until the client closes it.</summary>
    public static FakeUapiServer StartSilent() => new(null, closeAfterResponse: false, null);

    public async Task<string> RequestTextAsync() =>
        Encoding.ASCII.GetString(await _request.WaitAsync(TimeSpan.FromSeconds(10)));

    private async Task<byte[]> ServeAsync(byte[]? response, bool closeAfterResponse, int? answerAfterBytes, CancellationToken cancellationToken)
    {
        using var connection = await _listener.AcceptAsync(cancellationToken);
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (!EndsRequest(received) && received.Length < (answerAfterBytes ?? int.MaxValue))
        {
            var read = await connection.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                break;
            }
            received.Write(buffer, 0, read);
        }
        if (response is not null)
        {
            await connection.SendAsync(response, SocketFlags.None, cancellationToken);
        }
        if (!closeAfterResponse)
        {
            while (await connection.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
            {
            }
        }
        return received.ToArray();
    }

    // Requests hold no empty line except the one that ends them.
    private static bool EndsRequest(MemoryStream received) =>
        received.GetBuffer().AsSpan(0, (int)received.Length).IndexOf("\n\n"u8) >= 0;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _request;
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
        _listener.Dispose();
        _stop.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
