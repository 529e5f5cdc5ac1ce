using System.ComponentModel;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Vpn.Core.Nat;

/// <summary>
/// The <c>cli</c> NAT driver: applies <see cref="NftRuleset"/> with <c>nft -f -</c>, so the whole
/// table is replaced in one kernel transaction and other tables are never touched.
/// </summary>
public sealed partial class NftNatDriver : INatDriver
{
    private readonly string _table;
    private readonly string _pool;
    private readonly string _interfaceName;
    private readonly ILogger<NftNatDriver> _logger;
    private readonly NftCommand _command;
    private readonly TimeSpan _timeout;
    private readonly string _applyScript;
    private readonly string _removeScript;

    /// <param name="command">How to run nft; plain <c>nft</c> from PATH when null.</param>
    /// <param name="timeout">Deadline for each nft run, after which it is killed; 10 seconds when null.</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public NftNatDriver(NatOptions options, ILogger<NftNatDriver> logger, NftCommand? command = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(logger);
        _applyScript = NftRuleset.Render(options);
        _removeScript = NftRuleset.RenderDelete(options);
        _table = options.TableName;
        _pool = options.ClientPool;
        _interfaceName = options.InterfaceName;
        _logger = logger;
        _command = command ?? NftCommand.Default;
        _timeout = timeout ?? TimeSpan.FromSeconds(10);
    }

    public async Task ApplyAsync(CancellationToken cancellationToken)
    {
        await RunCheckedAsync(["-f", "-"], _applyScript, "apply", cancellationToken).ConfigureAwait(false);
        LogApplied(_logger, _table, _pool, _interfaceName);
    }

    public async Task RemoveAsync(CancellationToken cancellationToken)
    {
        await RunCheckedAsync(["-f", "-"], _removeScript, "remove", cancellationToken).ConfigureAwait(false);
        LogRemoved(_logger, _table);
    }

    /// <summary>
    /// Lists the ip-family tables rather than the table itself: <c>nft list table</c> fails both when the
    /// table is missing and when nft cannot run, and telling those apart would mean parsing error text.
    /// </summary>
    public async Task<bool> IsPresentAsync(CancellationToken cancellationToken)
    {
        var output = await RunCheckedAsync(["list", "tables", "ip"], null, "list tables", cancellationToken).ConfigureAwait(false);
        var expected = $"table ip {_table}";
        return output.Split('\n').Any(line => line.Trim() == expected);
    }

    private async Task<string> RunCheckedAsync(string[] arguments, string? standardInput, string what, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(_command.FileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in _command.PrefixArguments.Concat(arguments))
        {
            info.ArgumentList.Add(argument);
        }
        // Stable, untranslated diagnostics for the exception message.
        info.Environment["LC_ALL"] = "C";
        var commandLine = $"{_command.FileName} {string.Join(' ', info.ArgumentList)}";

        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new NatException($"NAT {what}: could not start '{commandLine}': {e.Message}", null, "", e);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_timeout);
        var stdout = process.StandardOutput.ReadToEndAsync(deadline.Token);
        var stderr = process.StandardError.ReadToEndAsync(deadline.Token);
        try
        {
            await WriteInputAsync(process, standardInput, deadline.Token).ConfigureAwait(false);
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            var (output, error) = (await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
            if (process.ExitCode != 0)
            {
                throw new NatException($"NAT {what}: '{commandLine}' exited with {process.ExitCode}: {error.Trim()}", process.ExitCode, error);
            }
            return output;
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            Kill(process);
            throw new NatException($"NAT {what}: '{commandLine}' did not finish within {_timeout.TotalSeconds:0.###} s.", null, "", e);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw;
        }
    }

    private static async Task WriteInputAsync(Process process, string? standardInput, CancellationToken cancellationToken)
    {
        try
        {
            if (standardInput is not null)
            {
                await process.StandardInput.WriteAsync(standardInput.AsMemory(), cancellationToken).ConfigureAwait(false);
            }
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // A broken pipe: the command exited without reading its input; its exit code and stderr tell why.
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "NAT table ip {Table} applied: masquerading {Pool} except via {Interface}")]
    private static partial void LogApplied(ILogger logger, string table, string pool, string @interface);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "NAT table ip {Table} removed")]
    private static partial void LogRemoved(ILogger logger, string table);
}
