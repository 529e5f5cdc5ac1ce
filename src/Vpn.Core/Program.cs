using Vpn.Core;
using Vpn.Core.Control;

var builder = WebApplication.CreateBuilder(args);
builder.AddCoreServices();

var app = builder.Build();
app.MapGrpcService<VpnControlService>();
await app.RunAsync();
