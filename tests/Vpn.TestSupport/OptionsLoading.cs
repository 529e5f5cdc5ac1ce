using Microsoft.Extensions.Configuration;

namespace Vpn.TestSupport;

/// <summary>A service's options reader as start-up calls it: the options, and every problem found in the settings.</summary>
public delegate TOptions OptionsLoader<out TOptions>(IConfiguration configuration, out IReadOnlyList<string> errors);

/// <summary>
/// Options read from settings given in the test, by the same <c>Load</c> that reads the environment at start-up
/// (<c>EntryOptions.Load</c>, <c>CoreOptions.Load</c>): one place that builds the configuration for every options test.
/// </summary>
public static class OptionsLoading
{
    /// <summary>Settings named as environment variables (e.g. <c>APP_ENV</c>); a later pair for a name wins.</summary>
    public static IConfiguration Configuration(params (string Key, string Value)[] settings) =>
        Configuration(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)));

    public static IConfiguration Configuration(IEnumerable<KeyValuePair<string, string?>> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

    public static (TOptions Options, IReadOnlyList<string> Errors) Load<TOptions>(OptionsLoader<TOptions> load, params (string Key, string Value)[] settings)
    {
        ArgumentNullException.ThrowIfNull(load);
        var options = load(Configuration(settings), out var errors);
        return (options, errors);
    }

    public static (TOptions Options, IReadOnlyList<string> Errors) Load<TOptions>(OptionsLoader<TOptions> load, IEnumerable<KeyValuePair<string, string?>> settings)
    {
        ArgumentNullException.ThrowIfNull(load);
        var options = load(Configuration(settings), out var errors);
        return (options, errors);
    }
}
