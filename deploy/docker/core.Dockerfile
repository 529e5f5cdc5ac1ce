# core: the node agent (gRPC for entry; drives wireguard-go over its UAPI socket, the interface over netlink, NAT with nft).
#   docker build -f deploy/docker/core.Dockerfile -t vpn-core .
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Vpn.Core/Vpn.Core.csproj -c Release -o /out

FROM mcr.microsoft.com/dotnet/aspnet:10.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /out .
# Runs as root with only NET_ADMIN (netlink, nftables, /proc/sys/net/ipv4/ip_forward): see the pod's securityContext.
ENV APP_ENV=production \
    WG_DATAPLANE=linux \
    WG_NAT_DRIVER=cli \
    CORE_GRPC_LISTEN=0.0.0.0:50051
EXPOSE 50051
ENTRYPOINT ["dotnet", "Vpn.Core.dll"]
