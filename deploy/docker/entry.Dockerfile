# entry: the public and admin HTTP API, published self-contained (linux-x64) onto a runtime-deps image: no .NET runtime,
# no shell, no package manager in the image. Build from the repository root:
#   docker build -f deploy/docker/entry.Dockerfile -t vpn-entry .
# Without registry access (CI here), deploy/docker/build-local.sh feeds a publish made on the host instead:
#   --build-arg PUBLISH=prebuilt (the context holds publish/entry/) --build-arg RUNTIME_IMAGE=<a local Debian 12 base>
#
# The digests below were not resolved from this machine (it has no registry access); they are the digests public
# Dockerfiles pinned for these tags. Re-pin before a release: docker buildx imagetools inspect <image>:<tag>
# The SDK must satisfy global.json (10.0.401 or a later feature band).
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0@sha256:e1ffd2a92ae84c1291bc1b6887501f8af98e6331e7af6d4c8d37168c5e87a64c
# Ubuntu 24.04 chiseled: glibc, libssl, zlib, CA certificates and nothing else (entry runs with invariant globalization).
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled@sha256:b857c8cb8d929183cfe4c6dd9994abba92a2639dd2dbaf06005379f815991604
# sdk: publish from the source in the context; prebuilt: take the context's publish/entry/ as it is.
ARG PUBLISH=sdk

FROM ${SDK_IMAGE} AS publish-sdk
WORKDIR /src
COPY . .
RUN dotnet publish src/Vpn.Entry/Vpn.Entry.csproj -c Release -r linux-x64 --self-contained -o /out

FROM scratch AS publish-prebuilt
COPY publish/entry /out

FROM publish-${PUBLISH} AS publish

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=publish /out /app
# A fixed numeric user with no capability: the pod's runAsUser/runAsGroup (10001) match it, and runAsNonRoot can
# verify it (the kubelet refuses a named user it cannot resolve).
USER 10001:10001
ENV ASPNETCORE_URLS=http://+:8080 \
    APP_ENV=production \
    DOTNET_gcServer=1
EXPOSE 8080
# `migrate` applies the migrations and exits: it reads only DATABASE_URL (or DATABASE_URL_FILE) and the pool settings,
# so a migration init container or Job needs no other secret. No curl in the image: probes are the kubelet's httpGet.
ENTRYPOINT ["/app/Vpn.Entry"]
