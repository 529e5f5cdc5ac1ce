using Microsoft.Extensions.Configuration;

namespace Vpn.Core.Tests.Configuration;

/// <summary>Core's options loaded from settings as the environment would give them (names as operators write them).</summary>
internal static class CoreSettings
{
    public static (CoreOptions Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] settings) =>
        Load(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)));

    public static (CoreOptions Options, IReadOnlyList<string> Errors) Load(IEnumerable<KeyValuePair<string, string?>> settings)
    {
        var options = CoreOptions.Load(Configuration(settings), out var errors);
        return (options, errors);
    }

    public static IConfiguration Configuration(IEnumerable<KeyValuePair<string, string?>> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
}
