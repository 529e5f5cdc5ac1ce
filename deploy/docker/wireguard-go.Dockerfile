# The userspace WireGuard device core drives (a sidecar sharing the pod's network and /var/run/wireguard): Debian's
# wireguard-go binary, wg (the probe) and the two glibc files they link, on an empty image (no shell, no package manager).
#   docker build -f deploy/docker/wireguard-go.Dockerfile -t vpn-wireguard-go deploy/docker
#   (--build-arg DEBIAN_IMAGE=… for a mirrored or local Debian 12 image; build-local.sh passes its own)
# The digest was not resolved from this machine (no registry access); it is one public Dockerfiles pinned for the tag.
# Re-pin before a release: docker buildx imagetools inspect debian:bookworm-slim
ARG DEBIAN_IMAGE=debian:bookworm-slim@sha256:b55e2651b71408015f8068dd74e1d04404a8fa607dd2cfe284b4824c11f4d9bd

FROM ${DEBIAN_IMAGE} AS debian
RUN { dpkg -s wireguard-go && dpkg -s wireguard-tools; } >/dev/null 2>&1 || { \
      apt-get update \
      && apt-get install -y --no-install-recommends wireguard-go wireguard-tools \
      && rm -rf /var/lib/apt/lists/*; }
# Fails the build if a newer package links more than glibc (the final image carries only these files).
RUN test "$(ldd /usr/bin/wireguard-go | grep -c '=>')" = 1 && test "$(ldd /usr/bin/wg | grep -c '=>')" = 1

FROM scratch
COPY --from=debian /lib64/ld-linux-x86-64.so.2 /lib64/
COPY --from=debian /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/
COPY --from=debian /usr/bin/wireguard-go /usr/bin/wireguard-go
# wg: the pod's exec probe (`wg show <interface>` over the UAPI socket answers while the device runs).
COPY --from=debian /usr/bin/wg /usr/bin/wg
# uid 0 with only NET_ADMIN (cap-drop ALL, cap-add NET_ADMIN) and the /dev/net/tun device: creating the TUN interface
# needs the capability, which a non-root uid would not have in effect (Kubernetes sets no ambient capabilities).
ENV WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
# -f: stay in the foreground, so the container lives and dies with the device. The argument is the interface name:
# a pod passes its own as args, e.g. ["$(WG_INTERFACE)"] (the kubelet expands it; there is no shell here to do so).
ENTRYPOINT ["/usr/bin/wireguard-go", "-f"]
CMD ["wg0"]
