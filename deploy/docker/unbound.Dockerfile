# The node's DNS resolver for its tunnel clients (a sidecar of core on the host network): Debian's unbound and the
# DNSSEC root trust anchor (dns-root-data, /usr/share/dns/root.key). It ships no configuration of its own: core's
# `resolver-config` (the pod's init container) renders /run/unbound/unbound.conf from the node's settings.
#   docker build -f deploy/docker/unbound.Dockerfile -t vpn-unbound deploy/docker
#   (--build-arg BASE_IMAGE=… for a mirrored or local Debian 12 image; build-local.sh passes its own)
# The digest was not resolved from this machine (no registry access); it is one public Dockerfiles pinned for the tag.
# Re-pin before a release: docker buildx imagetools inspect debian:bookworm-slim
ARG BASE_IMAGE=debian:bookworm-slim@sha256:b55e2651b71408015f8068dd74e1d04404a8fa607dd2cfe284b4824c11f4d9bd
FROM ${BASE_IMAGE}
# Port 53 as a non-root user: the pod adds NET_BIND_SERVICE to the bounding set, but the runtime gives a non-root
# process no effective capabilities (no ambient ones), so the binary carries the file capability. That is honoured only
# without no_new_privs, hence allowPrivilegeEscalation: true on this container (checked: with no_new_privs, or without
# the file capability, the bind fails with "Permission denied").
# A base that already has the packages (the local CI base of build-local.sh) skips apt, so that build needs no network.
RUN { dpkg -s unbound dns-root-data libcap2-bin >/dev/null 2>&1 || { apt-get update \
        && apt-get install -y --no-install-recommends unbound dns-root-data libcap2-bin; }; } \
 && setcap cap_net_bind_service=+ep /usr/sbin/unbound \
 && apt-get purge -y libcap2-bin \
 && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric user (not Debian's `unbound`, whose uid varies), so runAsNonRoot can verify it. The rendered config
# has no chroot and no username: unbound never needs to switch users.
USER 10053:10053
# -d: stay in the foreground (the container lives and dies with it); -p: no pid file.
ENTRYPOINT ["unbound", "-d", "-p", "-c", "/run/unbound/unbound.conf"]
