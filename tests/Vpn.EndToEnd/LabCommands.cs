namespace Vpn.EndToEnd;

/// <summary>The steps both topologies (<see cref="VpnLab"/>, <see cref="ConsumerLab"/>) take the same way on their node and for diagnostics.</summary>
internal static class LabCommands
{
    /// <summary>
    /// Python for the labs' echo servers: the imports they use and a handler class <c>H</c> that answers each GET with the
    /// client's source address and logs nothing. Ends with a newline, so a script can go on after it.
    /// </summary>
    public const string EchoHandlerPython = """
        import http.server, os, socket, socketserver, sys, threading
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = self.client_address[0].encode()
                self.send_response(200)
                self.send_header('Content-Type', 'text/plain')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass

        """;

    /// <summary>
    /// Appends one command's exit code and output, run in <paramref name="ns"/>, to a failure description; a command
    /// that cannot run is noted instead of thrown, and a namespace not created yet is skipped.
    /// </summary>
    public static async Task AppendAsync(StringBuilder sb, NetworkNamespace? ns, params string[] command)
    {
        if (ns is null)
        {
            return;
        }
        try
        {
            var r = await ns.ExecAsync(command[0], command[1..]);
            sb.AppendLine($"--- [{ns.Name}] {string.Join(' ', command)} (exit {r.ExitCode})").AppendLine(r.StandardOutput.TrimEnd()).Append(r.StandardError);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            sb.AppendLine($"--- [{ns.Name}] {string.Join(' ', command)}: {e.Message}");
        }
    }

    /// <summary>Kills the node's wireguard-go (SIGKILL, as a crash), waits until its interface is gone and starts a fresh, empty one.</summary>
    public static async Task<WireGuardGo> RestartWireGuardAsync(NetworkNamespace node, string nodeInterface, WireGuardGo? running)
    {
        if (running is not null)
        {
            await running.DisposeAsync();
        }
        await VpnLab.WaitUntilAsync(async () => !(await node.ExecAsync("ip", "link", "show", nodeInterface)).StandardOutput.Contains(nodeInterface, StringComparison.Ordinal),
            TimeSpan.FromSeconds(10), () => $"{nodeInterface} still exists after wireguard-go was killed");
        return await WireGuardGo.StartAsync(node, nodeInterface);
    }

    /// <summary>Public keys of the peers a WireGuard device has right now (<c>wg show IF peers</c>).</summary>
    public static async Task<IReadOnlyList<string>> WgShowPeersAsync(NetworkNamespace ns, string device)
    {
        var output = await ns.ExecCheckedAsync("wg", "show", device, "peers");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }
}
