#!/usr/bin/env bash
# Installs what the high-availability tests (tests/ha/) start, with apt-get, only what is
# missing: keepalived, BIRD 2 (bird, birdc), curl (the /readyz checks), nftables (dropping
# VRRP adverts), iproute2 (namespaces, ss), procps (sysctl in the router namespace).
# Idempotent and non-interactive; runs `apt-get update` only when an install fails without
# it, and waits for another apt process to release its lock. The tests need root as well.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

# command -> package
declare -A WANT=(
  [keepalived]=keepalived
  [bird]=bird2
  [birdc]=bird2
  [curl]=curl
  [nft]=nftables
  [ip]=iproute2
  [ss]=iproute2
  [logger]=bsdutils
  [sysctl]=procps
  [stdbuf]=coreutils
)

missing=()
for cmd in "${!WANT[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
    missing+=("${WANT[$cmd]}")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
# One package may provide several commands.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

APT_OPTS=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)

install() {
  $SUDO apt-get install "${APT_OPTS[@]}" "$@" >/dev/null
}

echo "ha_install: installing ${missing[*]}" >&2
if ! install "${missing[@]}"; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  install "${missing[@]}"
fi

# The Debian packages enable and start their own daemons; the tests run their own copies in
# network namespaces, so the host's are neither needed nor touched here.
