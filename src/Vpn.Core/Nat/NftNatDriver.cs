using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Vpn.Core.Nat;

/// <summary>
/// The <c>cli</c> driver: applies the <see cref="NftRuleset"/> rendering of the table with <c>nft -f -</c>, so the whole
/// table is replaced in one kernel transaction and other tables are never touched.
/// </summary>
public sealed partial class NftNatDriver : INatDriver
{
    private readonly string _table;
    private readonly int _rules;
    private readonly ILogger<NftNatDriver> _logger;
    private readonly NftCommand _command;
    private readonly TimeSpan _timeout;
    private readonly string _applyScript;
    private readonly string _removeScript;

    /// <param name="command">How to run nft; plain <c>nft</c> from PATH when null.</param>
    /// <param name="timeout">Deadline for each nft run, after which it is killed; 10 seconds when null.</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public NftNatDriver(FirewallTable table, ILogger<NftNatDriver> logger, NftCommand? command = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(logger);
        _applyScript = NftRuleset.Render(table);
        _removeScript = NftRuleset.RenderDelete(table.Name);
        _table = table.Name;
        _rules = table.RuleCount;
        _logger = logger;
        _command = command ?? NftCommand.Default;
        _timeout = timeout ?? TimeSpan.FromSeconds(10);
    }

    public async Task ApplyAsync(CancellationToken cancellationToken)
    {
        await RunCheckedAsync(["-f", "-"], _applyScript, "apply", cancellationToken).ConfigureAwait(false);
        LogApplied(_logger, _table, _rules);
    }

    public string Name => "cli";

    public IReadOnlyList<string> NativeFeatures => [];

    public async Task RemoveAsync(CancellationToken cancellationToken)
    {
        await RunCheckedAsync(["-f", "-"], _removeScript, "remove", cancellationToken).ConfigureAwait(false);
        LogRemoved(_logger, _table);
    }

    /// <summary>
    /// Lists the inet-family tables rather than the table itself: <c>nft list table</c> fails both when the
    /// table is missing and when nft cannot run, and telling those apart would mean parsing error text.
    /// </summary>
    public async Task<bool> IsPresentAsync(CancellationToken cancellationToken)
    {
        var output = await RunCheckedAsync(["list", "tables", "inet"], null, "list tables", cancellationToken).ConfigureAwait(false);
        var expected = $"table inet {_table}";
        return output.Split('\n').Any(line => line.Trim() == expected);
    }

    public async Task<IReadOnlyList<FirewallCounter>> ReadCountersAsync(CancellationToken cancellationToken)
    {
        var output = await RunCheckedAsync(["-j", "list", "counters", "table", "inet", _table], null, "list counters", cancellationToken)
            .ConfigureAwait(false);
        return ParseCounters(output, _table);
    }

    /// <summary>The counters of <paramref name="table"/> in <c>nft -j list counters</c> output.</summary>
    internal static IReadOnlyList<FirewallCounter> ParseCounters(string json, string table)
    {
        var counters = new List<FirewallCounter>();
        try
        {
            using var document = JsonDocument.Parse(json);
            foreach (var item in document.RootElement.GetProperty("nftables").EnumerateArray())
            {
                if (item.TryGetProperty("counter", out var counter) && counter.GetProperty("table").GetString() == table
                    && counter.GetProperty("family").GetString() == "inet")
                {
                    counters.Add(new FirewallCounter(counter.GetProperty("name").GetString() ?? "",
                        counter.GetProperty("packets").GetUInt64(), counter.GetProperty("bytes").GetUInt64()));
                }
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new NatException($"nft -j list counters printed something unexpected: {e.Message}", e);
        }
        return counters;
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

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Filter and NAT table inet {Table} applied with nft ({Rules} rules)")]
    private static partial void LogApplied(ILogger logger, string table, int rules);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "Filter and NAT table inet {Table} removed")]
    private static partial void LogRemoved(ILogger logger, string table);
}
