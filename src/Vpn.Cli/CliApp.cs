using Vpn.Cli.Admin;
using Vpn.Cli.Client;

namespace Vpn.Cli;

/// <summary>
/// vpnctl: the operator's commands over entry's admin API and the reference client for app developers. One entry point
/// for the process and for tests (<see cref="RunAsync"/> with captured writers): the exit code is the result.
/// </summary>
public static class CliApp
{
    public const string DefaultUrl = "http://127.0.0.1:8080";

    public static async Task<int> RunAsync(string[] args, CliContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var options = new GlobalOptions();
        var root = new RootCommand("vpnctl: operate a VPN control plane over entry's admin API, and a reference client for app developers.");
        options.AddTo(root);
        root.Subcommands.Add(NodeCommands.Create(options, context));
        root.Subcommands.Add(PlanCommands.Create(options, context));
        root.Subcommands.Add(SubscriptionCommands.Create(options, context));
        root.Subcommands.Add(CustomerCommands.Create(options, context));
        root.Subcommands.Add(StatusCommands.CreateStatus(options, context));
        root.Subcommands.Add(StatusCommands.CreateDoctor(options, context));
        root.Subcommands.Add(ClientCommands.Create(options, context));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await context.Error.WriteLineAsync("error: " + error.Message);
            }
            await context.Error.WriteLineAsync("(vpnctl --help lists the commands; vpnctl <command> --help their options)");
            return ExitCodes.Usage;
        }
        return await parse.InvokeAsync(new InvocationConfiguration { Output = context.Out, Error = context.Error }, cancellationToken);
    }
}

/// <summary>The options every command takes (recursive: given before or after the command's name).</summary>
public sealed class GlobalOptions
{
    public Option<string?> Url { get; } = new("--url")
    {
        Description = $"entry's base URL (default: $VPNCTL_URL, else {CliApp.DefaultUrl})",
        Recursive = true,
    };

    public Option<FileInfo?> TokenFile { get; } = new("--token-file")
    {
        Description = "a file holding the admin token (default: $VPNCTL_ADMIN_TOKEN; $VPNCTL_ADMIN_TOKEN_FILE)",
        Recursive = true,
    };

    public Option<bool> Json { get; } = new("--json") { Description = "print JSON for scripts instead of tables", Recursive = true };

    public Option<int> Timeout { get; } = new("--timeout")
    {
        Description = "seconds to wait for each answer",
        DefaultValueFactory = _ => 30,
        Recursive = true,
    };

    public void AddTo(RootCommand root)
    {
        root.Options.Add(Url);
        root.Options.Add(TokenFile);
        root.Options.Add(Json);
        root.Options.Add(Timeout);
    }
}
