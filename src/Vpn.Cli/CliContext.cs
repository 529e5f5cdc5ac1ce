namespace Vpn.Cli;

/// <summary>
/// What a run of vpnctl talks to besides entry: its output, its environment and (sign-in) how a URL is shown to the
/// user. The process uses the console and the real environment; tests pass writers, a dictionary and a scripted browser.
/// </summary>
public sealed record CliContext(TextWriter Out, TextWriter Error, Func<string, string?> Environment)
{
    /// <summary>Opens the sign-in URL (a scripted browser in tests); null: the URL is printed for the user to open.</summary>
    public Func<Uri, CancellationToken, Task>? OpenBrowser { get; init; }

    /// <summary>The HTTP handler for entry and the OpenID provider (tests may pass their own); null: a default one.</summary>
    public HttpMessageHandler? HttpHandler { get; init; }

    public static CliContext FromProcess() => new(Console.Out, Console.Error, System.Environment.GetEnvironmentVariable);
}

/// <summary>
/// The exit codes (README "vpnctl"): scripts can tell a failed check from a refusal, a bad token or an outage.
/// </summary>
public static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>A check failed: doctor or status found a problem (each FAIL line says which).</summary>
    public const int CheckFailed = 1;

    /// <summary>Bad usage: an unknown command or option, a missing argument, no URL or token, an unreadable file.</summary>
    public const int Usage = 2;

    /// <summary>The API refused the request (a 4xx problem other than 401, e.g. 403 subscription_inactive, 404, 409): its code is printed.</summary>
    public const int Refused = 3;

    /// <summary>Not authorized: a wrong admin token or access token (401), or the client is not signed in.</summary>
    public const int Unauthorized = 4;

    /// <summary>Entry (or a node behind it) is unavailable: a 5xx answer, no answer at all, or a timeout.</summary>
    public const int Unavailable = 5;
}

/// <summary>A failure with its exit code and a one-line message for people (never a secret).</summary>
public class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
