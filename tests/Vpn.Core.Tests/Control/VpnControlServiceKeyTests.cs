using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Vpn.Contracts.Core.V1;

namespace Vpn.Core.Tests.Control;

/// <summary>
/// Connect refuses device keys no peer can have: small-order points in every spelling, non-canonical encodings and the
/// node's own public key (derived from WG_PRIVATE_KEY at start). A real core host (noop dataplane) over its gRPC socket.
/// </summary>
public sealed class VpnControlServiceKeyTests : IAsyncLifetime
{
    // RFC 7748 §6.1 Alice: the node's key pair.
    private static readonly WireGuardKey NodePrivateKey = WireGuardKey.FromBytes(Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    private const string NodePublicKey = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

    private readonly string _socket = Path.Combine(Path.GetTempPath(), $"core-keys-{Guid.NewGuid():N}.sock");
    private WebApplication _core = null!;
    private GrpcChannel _channel = null!;

    public async ValueTask InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["WG_DATAPLANE"] = "noop",
            ["WG_PRIVATE_KEY"] = NodePrivateKey.ToBase64(),
            ["CORE_GRPC_LISTEN"] = "unix:" + _socket,
        });
        builder.AddCoreServices();
        _core = builder.Build();
        _core.MapGrpcService<VpnControlService>();
        await _core.StartAsync(TestContext.Current.CancellationToken);
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(_socket), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            },
        });
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _core.StopAsync(CancellationToken.None);
        await _core.DisposeAsync();
        File.Delete(_socket);
    }

    private Task<ConnectResponse> ConnectAsync(string key) => new VpnControl.VpnControlClient(_channel)
        .ConnectAsync(new ConnectRequest { SessionId = Guid.NewGuid().ToString(), DevicePublicKey = key }, cancellationToken: TestContext.Current.CancellationToken)
        .ResponseAsync;

    [Fact]
    public void NodePublicKey_DerivedFromPrivateKey_IsTheRfcValue() => Assert.Equal(NodePublicKey, X25519.PublicKeyOf(NodePrivateKey).ToBase64());

    [Theory]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")] // 0
    [InlineData("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")] // 1
    [InlineData("4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=")] // order 8
    [InlineData("X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=")] // order 8
    [InlineData("7P///////////////////////////////////////38=")] // p-1
    [InlineData("7f///////////////////////////////////////38=")] // p
    [InlineData("7v///////////////////////////////////////38=")] // p+1
    [InlineData("4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuIA=")] // order 8, bit 255 set
    [InlineData("8f///////////////////////////////////////38=")] // p+4: non-canonical 4
    [InlineData("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTuo=")] // the node's key, bit 255 set
    [InlineData(NodePublicKey)]
    public async Task Connect_UnusableDeviceKey_InvalidArgument(string key)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => ConnectAsync(key));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.DoesNotContain(key, error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_OrdinaryDeviceKey_Connected()
    {
        var response = await ConnectAsync(X25519.PublicKeyOf(WireGuardKey.Generate()).ToBase64());
        Assert.EndsWith("/32", response.AssignedAddress, StringComparison.Ordinal);
    }
}
