using Microsoft.Extensions.Configuration;
using Vpn.TestSupport;

namespace Vpn.Core.Tests.Configuration;

/// <summary>Core's options loaded from settings as the environment would give them, through TestSupport's one loader.</summary>
internal static class CoreSettings
{
    public static (CoreOptions Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] settings) =>
        OptionsLoading.Load(CoreOptions.Load, settings);

    public static (CoreOptions Options, IReadOnlyList<string> Errors) Load(IEnumerable<KeyValuePair<string, string?>> settings) =>
        OptionsLoading.Load(CoreOptions.Load, settings);

    public static IConfiguration Configuration(IEnumerable<KeyValuePair<string, string?>> settings) => OptionsLoading.Configuration(settings);
}
