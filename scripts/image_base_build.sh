#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's base image `denoland/deno:debian-<version>` when
# registries cannot be reached: a Debian bookworm minbase tree from debootstrap, the Deno binary
# from npm (the same one `npx deno@<version>` runs), and the official image's user (`deno`,
# uid/gid 1993) and DENO_DIR (/deno-dir). Idempotent: does nothing when podman already holds
# the tag; the debootstrap tree is cached, so a rebuild after `podman rmi` takes seconds.
# Usage: scripts/image_base_build.sh
# Env:   NAUTILUS_IMAGE_CACHE  cache directory (default: $HOME/.cache/nautiluslb/image)
#        CONTAINERS_CONF       podman config (default: deploy/podman/containers.conf)
set -euo pipefail
cd "$(dirname "$0")/.."

deno_version=$(sed -n 's/^DENO_VERSION=//p' .ci/run)
deno_version=${deno_version:-2.9.6}
tag="docker.io/denoland/deno:debian-${deno_version}"
cache="${NAUTILUS_IMAGE_CACHE:-$HOME/.cache/nautiluslb/image}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}"
podman=(podman --runtime runc)

if "${podman[@]}" image exists "$tag"; then
  echo "$tag"
  exit 0
fi

rootfs="$cache/bookworm-minbase"
mkdir -p "$cache"
if [ ! -f "$rootfs/.complete" ]; then
  rm -rf "$rootfs"
  mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" \
    >"$cache/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache/debootstrap.log" >&2
    echo "image_base_build: debootstrap failed" >&2
    exit 1
  }
  # What a container image does not need: apt lists, docs, man pages, locales.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  touch "$rootfs/.complete"
fi

deno_bin=$(npx -y "deno@${deno_version}" eval --quiet 'console.log(Deno.execPath())')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$rootfs" --exclude=./.complete -cf "$work/rootfs.tar" .
cp "$deno_bin" "$work/deno"
cat >"$work/Containerfile" <<'CONTAINERFILE'
FROM scratch
ADD rootfs.tar /
COPY deno /usr/bin/deno
RUN groupadd --gid 1993 deno \
  && useradd --uid 1993 --gid deno --no-create-home --home-dir /home/deno --shell /bin/sh deno \
  && mkdir -p /deno-dir /home/deno && chown deno:deno /deno-dir /home/deno
ENV DENO_DIR=/deno-dir/ DENO_INSTALL_ROOT=/usr/local
CMD ["deno", "--version"]
CONTAINERFILE
"${podman[@]}" build --pull=never --network=host -q -t "$tag" -f "$work/Containerfile" "$work" >/dev/null
echo "$tag"
