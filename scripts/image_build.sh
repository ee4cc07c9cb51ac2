#!/usr/bin/env bash
# Builds the NautilusLB image with podman from the Dockerfile, on a machine that cannot pull:
# the base image comes from scripts/image_base_build.sh. Tags it with the names the manifests
# and the original's run line use. Prints the image's size.
# Usage: scripts/image_build.sh
# Env:   CONTAINERS_CONF  podman config (default: deploy/podman/containers.conf)
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}"

bash scripts/image_base_build.sh >/dev/null
# A TLS-intercepting proxy's CA (this machine's trust store), for fetching npm packages.
secret=()
ca="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
[ -f "$ca" ] && secret=(--secret "id=ca_bundle,src=$ca")
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' deno.json)
podman --runtime runc build --pull=never --network=host -q "${secret[@]}" \
  -t "ghcr.io/cloudresty/nautiluslb:${version}" \
  -t docker.io/cloudresty/nautiluslb:latest \
  -f Dockerfile . >/dev/null
podman image inspect --format '{{.Size}}' "ghcr.io/cloudresty/nautiluslb:${version}" |
  awk -v tag="ghcr.io/cloudresty/nautiluslb:${version}" '{ printf "%s %.0f MB\n", tag, $1 / 1e6 }'
