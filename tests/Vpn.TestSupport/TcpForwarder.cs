using System.Net.Sockets;

namespace Vpn.TestSupport;

/// <summary>
/// A loopback TCP port in front of a service (on a unix socket or another TCP port) that a test opens and closes like
/// the service's own port: closed, a connect is refused, as to a stopped process; each accepted connection is forwarded
/// byte for byte to a fresh connection to the target, and cut (both ends) when either end closes or the port is closed.
/// It lets a test decide the instant a restarted service becomes reachable again over TCP.
/// </summary>
public sealed class TcpForwarder : IAsyncDisposable
{
    private readonly EndPoint _target;
    private readonly Lock _gate = new();
    private readonly HashSet<Socket> _connections = [];
    private TcpListener? _listener;
    private Task? _accepting;

    private TcpForwarder(EndPoint target)
    {
        _target = target;
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>The loopback port (the same across close and open).</summary>
    public int Port { get; }

    public static TcpForwarder ToUnixSocket(string path) => new(new UnixDomainSocketEndPoint(path));

    public static TcpForwarder ToTcp(IPEndPoint target) => new(target);

    /// <summary>Starts accepting on <see cref="Port"/>.</summary>
    public void Open()
    {
        lock (_gate)
        {
            if (_listener is not null)
            {
                return;
            }
            var listener = new TcpListener(IPAddress.Loopback, Port);
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Start();
            _listener = listener;
            _accepting = AcceptAsync(listener);
        }
    }

    /// <summary>Stops accepting (connects are refused from now on) and cuts every forwarded connection.</summary>
    public async Task CloseAsync()
    {
        TcpListener? listener;
        Task? accepting;
        Socket[] open;
        lock (_gate)
        {
            (listener, accepting, _listener, _accepting) = (_listener, _accepting, null, null);
            open = [.. _connections];
            _connections.Clear();
        }
        listener?.Stop();
        foreach (var socket in open)
        {
            socket.Dispose();
        }
        if (accepting is not null)
        {
            await accepting;
        }
    }

    public async ValueTask DisposeAsync() => await CloseAsync();

    private async Task AcceptAsync(TcpListener listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            _ = ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(Socket client)
    {
        var target = new Socket(_target.AddressFamily, SocketType.Stream, _target is UnixDomainSocketEndPoint ? ProtocolType.Unspecified : ProtocolType.Tcp);
        try
        {
            await target.ConnectAsync(_target);
        }
        catch (SocketException)
        {
            // The service behind is down: reset the client at once, as close to "refused" as an accepted connection gets.
            client.LingerState = new LingerOption(true, 0);
            client.Dispose();
            target.Dispose();
            return;
        }
        lock (_gate)
        {
            _connections.Add(client);
            _connections.Add(target);
        }
        using var cut = new CancellationTokenSource();
        var up = PumpAsync(client, target, cut.Token);
        var down = PumpAsync(target, client, cut.Token);
        await Task.WhenAny(up, down);
        await cut.CancelAsync();
        lock (_gate)
        {
            _connections.Remove(client);
            _connections.Remove(target);
        }
        client.Dispose();
        target.Dispose();
        await Task.WhenAll(up, down);
    }

    private static async Task PumpAsync(Socket from, Socket to, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
                if (read == 0)
                {
                    return;
                }
                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, cancellationToken);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }
}
