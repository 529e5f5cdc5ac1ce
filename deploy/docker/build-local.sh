#!/usr/bin/env bash
# Builds the four images on a machine with podman (or buildah) and no access to the official base images, as CI here
# does: a local Debian 12 base made by debootstrap from the machine's own Debian mirror, and a self-contained publish
# of entry and core made on the host and fed to the Dockerfiles' `prebuilt` publish stage.
#
#   deploy/docker/build-local.sh [TAG]     # images localhost/vpn-{entry,core,wireguard-go,unbound}:TAG (default: local)
#
# Settings (environment): DEBIAN_MIRROR (default: the machine's apt configuration), BASE_IMAGE (default
# localhost/vpn-debian-base:bookworm, kept between runs and rebuilt only when its package list changes), SKIP_PUBLISH=1
# (reuse the last publish), CONFIGURATION (Release). Runs as root (debootstrap; podman with the runc runtime — the
# default crun fails on some kernels' cgroup layouts).
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=${1:-local}
base=${BASE_IMAGE:-localhost/vpn-debian-base:bookworm}
configuration=${CONFIGURATION:-Release}
work=${WORK_DIR:-/var/tmp/vpn-image-build}
podman=(podman --runtime runc)
# What the images install on top of their base, preinstalled here so that the builds need no network: each
# Dockerfile's apt step is skipped when its packages are already there.
base_packages=(libssl3 ca-certificates nftables wireguard-go wireguard-tools unbound dns-root-data libcap2-bin)

say() { printf '[build-local %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# The first Debian archive URI of apt's configuration that serves bookworm's main component (one-line .list or
# deb822 .sources files); never the security archive. Read here at run time, so no host name is committed.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                       if ($(i+1) == "bookworm") { print $i; exit } }' "$f"
  done | head -1 | grep . && return
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uris = ""; suites = ""
           for (j = 1; j <= NF; j++) {
             if ($j ~ /^URIs:/) { uris = $j; sub(/^URIs:[ \t]*/, "", uris) }
             if ($j ~ /^Suites:/) { suites = " " $j " " }
           }
           if (suites ~ / bookworm / && uris != "") { split(uris, u, " "); print u[1]; exit } }' "$f"
  done | head -1 | grep . && return
  echo "build-local: no Debian bookworm mirror in /etc/apt (set DEBIAN_MIRROR)" >&2
  return 1
}

build_base() {
  local want have
  want="${base_packages[*]}"
  if "${podman[@]}" image exists "$base"; then
    have=$("${podman[@]}" image inspect --format '{{ index .Config.Labels "vpn.base.packages" }}' "$base" 2>/dev/null || true)
    if [ "$have" = "$want" ]; then say "base $base cached"; return; fi
    say "base $base has other packages ('$have'): rebuilding"
  fi
  local mirror root
  mirror=$(debian_mirror)
  root="$work/rootfs"
  rm -rf "$root"
  mkdir -p "$root"
  say "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${base_packages[*]}")" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*
  tar -C "$root" -c . | "${podman[@]}" import --change "LABEL vpn.base.packages=$want" --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  rm -rf "$root"
  say "base $base imported"
}

publish() {
  local app
  for app in entry core; do
    local project="src/Vpn.${app^}/Vpn.${app^}.csproj"
    if [ "${SKIP_PUBLISH:-}" = 1 ] && [ -d "$work/context/publish/$app" ]; then continue; fi
    say "dotnet publish $project (linux-x64, self-contained)"
    rm -rf "$work/context/publish/$app"
    # Its own obj/ and bin/ (--artifacts-path): a RID-specific restore in src/*/obj would make the next plain build
    # of the checkout restore again.
    dotnet publish "$project" -c "$configuration" -r linux-x64 --self-contained -p:UseAppHost=true \
      --artifacts-path "$work/artifacts" -o "$work/context/publish/$app" -v quiet -nologo >"$work/publish-$app.log" 2>&1 \
      || { tail -30 "$work/publish-$app.log" >&2; exit 1; }
  done
}

build_image() {
  local name=$1 dockerfile=$2 context=$3; shift 3
  say "build localhost/vpn-$name:$tag"
  "${podman[@]}" build --quiet --network none --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 \
    -f "$dockerfile" -t "localhost/vpn-$name:$tag" "$@" "$context" >/dev/null
}

# The builds leave their stages behind as untagged images (--layers=false would not, but then buildah does not find
# the publish-${PUBLISH} stage): remove the ones this run made. The cached base stays.
dangling() { "${podman[@]}" images --quiet --no-trunc --filter dangling=true | sort -u; }
remove_new_dangling() {
  local new
  new=$(comm -13 <(printf '%s\n' "$dangling_before") <(dangling) | grep . || true)
  if [ -n "$new" ]; then "${podman[@]}" rmi --force $new >/dev/null 2>&1 || true; fi
}

mkdir -p "$work/context/publish"
build_base
publish
dangling_before=$(dangling)
trap remove_new_dangling EXIT
build_image entry deploy/docker/entry.Dockerfile "$work/context" --build-arg PUBLISH=prebuilt --build-arg RUNTIME_IMAGE="$base"
build_image core deploy/docker/core.Dockerfile "$work/context" --build-arg PUBLISH=prebuilt --build-arg RUNTIME_IMAGE="$base"
build_image wireguard-go deploy/docker/wireguard-go.Dockerfile deploy/docker --build-arg DEBIAN_IMAGE="$base"
build_image unbound deploy/docker/unbound.Dockerfile deploy/docker --build-arg BASE_IMAGE="$base"
say "built localhost/vpn-{entry,core,wireguard-go,unbound}:$tag"
