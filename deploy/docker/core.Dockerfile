# core: the node agent (gRPC for entry; drives wireguard-go over its UAPI socket, the interface over netlink, NAT with
# nft), published self-contained (linux-x64): the image has no .NET runtime. Build from the repository root:
#   docker build -f deploy/docker/core.Dockerfile -t vpn-core .
# Without registry access (CI here), deploy/docker/build-local.sh feeds a publish made on the host instead:
#   --build-arg PUBLISH=prebuilt (the context holds publish/core/) --build-arg RUNTIME_IMAGE=<a local Debian 12 base>
#
# The digests below were not resolved from this machine (it has no registry access); they are the digests public
# Dockerfiles pinned for these tags. Re-pin before a release: docker buildx imagetools inspect <image>:<tag>
# The SDK must satisfy global.json (10.0.401 or a later feature band).
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0@sha256:e1ffd2a92ae84c1291bc1b6887501f8af98e6331e7af6d4c8d37168c5e87a64c
# Debian 12: WG_NAT_DRIVER=cli runs Debian's nft, which brings its libraries (and so a Debian userland with a shell).
ARG RUNTIME_IMAGE=debian:bookworm-slim@sha256:b55e2651b71408015f8068dd74e1d04404a8fa607dd2cfe284b4824c11f4d9bd
ARG PUBLISH=sdk

FROM ${SDK_IMAGE} AS publish-sdk
WORKDIR /src
COPY . .
RUN dotnet publish src/Vpn.Core/Vpn.Core.csproj -c Release -r linux-x64 --self-contained -o /out

FROM scratch AS publish-prebuilt
COPY publish/core /out

FROM publish-${PUBLISH} AS publish

FROM ${RUNTIME_IMAGE}
# What a self-contained .NET app needs besides glibc (libssl3, CA certificates) and nft. A base that already has them
# (the local CI base of build-local.sh) skips apt, so that build needs no network.
RUN dpkg -s nftables libssl3 ca-certificates >/dev/null 2>&1 || { \
      apt-get update \
      && apt-get install -y --no-install-recommends nftables libssl3 ca-certificates \
      && rm -rf /var/lib/apt/lists/*; }
WORKDIR /app
COPY --from=publish /out /app
# uid 0 with only NET_ADMIN (cap-drop ALL, cap-add NET_ADMIN; no privileged mode): netlink, nftables and the UAPI
# socket of the root-owned wireguard-go. A non-root uid would get no effective capability (Kubernetes sets no ambient
# capabilities). Forwarding: /proc/sys is read-only in a container (Kubernetes too, unless privileged) and core writes
# net.ipv4.ip_forward and net.ipv6.conf.all.forwarding only when they are off, so the node must have both on already
# (its own sysctl configuration); otherwise core stops at start on the read-only file.
ENV APP_ENV=production \
    WG_DATAPLANE=linux \
    WG_NAT_DRIVER=cli \
    CORE_GRPC_LISTEN=0.0.0.0:50051
EXPOSE 50051
ENTRYPOINT ["/app/Vpn.Core"]
