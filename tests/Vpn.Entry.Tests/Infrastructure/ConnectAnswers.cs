using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Vpn.Entry.Tests.Infrastructure;

/// <summary>
/// Puts a gRPC proxy in front of each of <see cref="TestStack"/>'s in-process cores (pass <see cref="Install"/> as its
/// configureServices): every call goes through to the real core — peers really are added and removed — and the
/// test decides what Connect answers entry, e.g. a dual-stack answer or a malformed one.
/// </summary>
public sealed class ConnectAnswers : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<WebApplication>> _proxies = new(StringComparer.Ordinal);

    /// <summary>Rewrites the real core's answer (the endpoint, the answer); identity by default.</summary>
    public Func<string, ConnectResponse, ConnectResponse> Rewrite { get; set; } = (_, answer) => answer;

    /// <summary>Awaited before a Connect goes through to the core (the endpoint): a test holds core here to make it slow.</summary>
    public Func<string, Task> BeforeConnect { get; set; } = _ => Task.CompletedTask;

    public void Install(IServiceCollection services)
    {
        var inner = (ICoreChannelFactory)services.Last(d => d.ServiceType == typeof(ICoreChannelFactory)).ImplementationInstance!;
        services.RemoveAll<ICoreChannelFactory>();
        services.AddSingleton<ICoreChannelFactory>(new ProxyChannels(this, inner));
    }

    /// <summary>
    /// The answer a dual-stack core gives: its IPv6 address mirrors the IPv4 one's offset in 10.64.0.0/16 inside
    /// fd64:6400::/64, and both gateways resolve (IPv4 first).
    /// </summary>
    public static ConnectResponse DualStack(ConnectResponse answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        var v4 = IPAddress.Parse(answer.AssignedAddress.Split('/')[0]).GetAddressBytes();
        var v6 = IPAddress.Parse("fd64:6400::").GetAddressBytes();
        v6[14] = v4[2];
        v6[15] = v4[3];
        var dual = answer.Clone();
        dual.AssignedAddressV6 = $"{new IPAddress(v6)}/128";
        dual.Dns.Clear();
        dual.Dns.Add("10.64.0.1");
        dual.Dns.Add("fd64:6400::1");
        return dual;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var proxy in _proxies.Values.Where(p => p.IsValueCreated))
        {
            await proxy.Value.DisposeAsync();
        }
    }

    private WebApplication ProxyFor(string coreEndpoint, ICoreChannelFactory inner) => _proxies.GetOrAdd(coreEndpoint, endpoint => new(() =>
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseTestServer();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(new Proxy(endpoint, new VpnControl.VpnControlClient(inner.Create(endpoint)), this));
        var app = builder.Build();
        app.MapGrpcService<Proxy>();
        app.StartAsync().GetAwaiter().GetResult();
        return app;
    })).Value;

    private sealed class ProxyChannels(ConnectAnswers answers, ICoreChannelFactory inner) : ICoreChannelFactory
    {
        public GrpcChannel Create(string coreEndpoint)
        {
            var server = answers.ProxyFor(coreEndpoint, inner).GetTestServer();
            return GrpcChannel.ForAddress(server.BaseAddress, new GrpcChannelOptions { HttpHandler = server.CreateHandler() });
        }
    }

    private sealed class Proxy(string endpoint, VpnControl.VpnControlClient core, ConnectAnswers answers) : VpnControl.VpnControlBase
    {
        public override async Task<ConnectResponse> Connect(ConnectRequest request, ServerCallContext context)
        {
            await answers.BeforeConnect(endpoint);
            return answers.Rewrite(endpoint, await Forward(() => core.ConnectAsync(request, deadline: context.Deadline).ResponseAsync));
        }

        public override Task<DisconnectResponse> Disconnect(DisconnectRequest request, ServerCallContext context) =>
            Forward(() => core.DisconnectAsync(request, deadline: context.Deadline).ResponseAsync);

        public override Task<GetSessionResponse> GetSession(GetSessionRequest request, ServerCallContext context) =>
            Forward(() => core.GetSessionAsync(request, deadline: context.Deadline).ResponseAsync);

        public override Task<NodeStatus> GetNodeStatus(GetNodeStatusRequest request, ServerCallContext context) =>
            Forward(() => core.GetNodeStatusAsync(request, deadline: context.Deadline).ResponseAsync);

        // A core that is down (TestStack.CoreDown) stays down through the proxy.
        private static async Task<T> Forward<T>(Func<Task<T>> call)
        {
            try
            {
                return await call();
            }
            catch (HttpRequestException e)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, e.Message));
            }
        }
    }
}
