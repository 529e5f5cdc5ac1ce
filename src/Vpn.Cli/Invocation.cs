using Vpn.Cli.Output;

namespace Vpn.Cli;

/// <summary>One command's run: its parsed options, the context's writers, and entry clients made from the global options.</summary>
public sealed class Invocation(ParseResult parse, GlobalOptions options, CliContext context, CancellationToken cancellationToken)
{
    public ParseResult Parse { get; } = parse;

    public CliContext Context { get; } = context;

    public CancellationToken CancellationToken { get; } = cancellationToken;

    public TextWriter Out => Context.Out;

    public bool Json => Parse.GetValue(options.Json);

    public TimeSpan Timeout => TimeSpan.FromSeconds(Math.Clamp(Parse.GetValue(options.Timeout), 1, 3600));

    public T? Get<T>(Option<T> option) => Parse.GetValue(option);

    public T Get<T>(Argument<T> argument) => Parse.GetValue(argument)!;

    public Uri EntryUrl => ResolveUrl(null);

    /// <summary>--url, else $VPNCTL_URL, else <paramref name="fallback"/> (the client's sign-in remembers its entry), else the default.</summary>
    public Uri ResolveUrl(string? fallback)
    {
        var text = Parse.GetValue(options.Url) ?? Context.Environment("VPNCTL_URL") ?? fallback ?? CliApp.DefaultUrl;
        if (!Uri.TryCreate(text.TrimEnd('/') + "/", UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            throw new CliException(ExitCodes.Usage, $"--url must be an http(s) URL, got '{text}'");
        }
        return url;
    }

    /// <summary>A client that sends the admin token; no token anywhere is a usage error.</summary>
    public EntryHttp Admin() => new(EntryUrl, AdminToken(), Context.HttpHandler, Timeout);

    /// <summary>A client without credentials (/readyz, /healthz, the customer API with a Bearer token set later).</summary>
    public EntryHttp Anonymous(string? fallbackUrl = null) => new(ResolveUrl(fallbackUrl), null, Context.HttpHandler, Timeout);

    private string AdminToken()
    {
        var file = Parse.GetValue(options.TokenFile)?.FullName ?? Context.Environment("VPNCTL_ADMIN_TOKEN_FILE");
        if (file is not null)
        {
            try
            {
                var fromFile = File.ReadAllText(file).Trim();
                return fromFile.Length > 0 ? fromFile : throw new CliException(ExitCodes.Usage, $"the token file {file} is empty");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException(ExitCodes.Usage, $"cannot read the token file {file}: {e.Message}");
            }
        }
        var token = Context.Environment("VPNCTL_ADMIN_TOKEN");
        return string.IsNullOrWhiteSpace(token)
            ? throw new CliException(ExitCodes.Usage, "no admin token: set VPNCTL_ADMIN_TOKEN or pass --token-file FILE")
            : token.Trim();
    }

    /// <summary>Prints the JSON for --json, else runs <paramref name="human"/>.</summary>
    public void Print(JsonNode? json, Action<TextWriter> human)
    {
        if (Json)
        {
            Output.Json.Write(Out, json);
        }
        else
        {
            human(Out);
        }
    }
}

public static class CommandExtensions
{
    /// <summary>
    /// The command's action: a <see cref="CliException"/> (an API problem, no answer, bad usage) becomes one readable
    /// line on stderr and its exit code; anything else is a bug and keeps System.CommandLine's report.
    /// </summary>
    public static Command Handle(this Command command, GlobalOptions options, CliContext context, Func<Invocation, Task<int>> action)
    {
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                return await action(new Invocation(parse, options, context, ct));
            }
            catch (CliException e)
            {
                await context.Error.WriteLineAsync("error: " + e.Message);
                return e.ExitCode;
            }
        });
        return command;
    }

    public static Command With(this Command command, params Symbol[] symbols)
    {
        foreach (var symbol in symbols)
        {
            switch (symbol)
            {
                case Option option:
                    command.Options.Add(option);
                    break;
                case Argument argument:
                    command.Arguments.Add(argument);
                    break;
                case Command sub:
                    command.Subcommands.Add(sub);
                    break;
            }
        }
        return command;
    }
}
