# The userspace WireGuard device core drives (a sidecar sharing the pod's network and /var/run/wireguard).
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends wireguard-go wireguard-tools \
 && rm -rf /var/lib/apt/lists/*
ENV WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 \
    WG_INTERFACE=wg0
# -f: stay in the foreground, so the container lives and dies with the device.
ENTRYPOINT ["sh", "-c", "exec wireguard-go -f \"$WG_INTERFACE\""]
