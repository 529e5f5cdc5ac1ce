using System.Runtime.ExceptionServices;
using Vpn.TestSupport.Oidc;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// One real OpenID provider (oidc-provider on loopback) for the sign-in tests of a class. A start that fails (node or the
/// npm packages missing: a skip locally, a failure under CI) does not throw out of <see cref="InitializeAsync"/>, where
/// xunit would fail the whole class: it is kept and thrown again by every test that asks for <see cref="Provider"/>, as
/// <c>VpnStackFixture.EnsureReady</c> does.
/// </summary>
public sealed class OidcProviderFixture : IAsyncLifetime
{
    private OidcProvider? _provider;
    private ExceptionDispatchInfo? _startFailure;

    /// <summary>The running provider; throws the start's failure (e.g. the prerequisite skip) when there is none.</summary>
    public OidcProvider Provider
    {
        get
        {
            _startFailure?.Throw();
            return _provider!;
        }
    }

    public async ValueTask InitializeAsync()
    {
        try
        {
            _provider = await OidcProvider.StartAsync();
        }
        catch (Exception e)
        {
            _startFailure = ExceptionDispatchInfo.Capture(e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_provider is not null)
        {
            await _provider.DisposeAsync();
        }
    }
}
