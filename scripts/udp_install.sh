#!/usr/bin/env bash
# Installs what the UDP tests and the UDP bench start: DNS servers (dnsmasq, unbound), DNS
# clients (kdig from knot-dnsutils, dig from bind9-dnsutils, dnsperf), nginx (stream UDP, the
# bench's peer) and iproute2 (network namespaces), with apt-get, only those missing.
# Idempotent and non-interactive; runs `apt-get update` only when an install fails without it,
# and waits for another apt process to release its lock.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

# command -> package
declare -A WANT=(
  [dnsmasq]=dnsmasq
  [unbound]=unbound
  [kdig]=knot-dnsutils
  [dig]=bind9-dnsutils
  [dnsperf]=dnsperf
  [nginx]=nginx
  [ip]=iproute2
)

missing=()
for cmd in "${!WANT[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${WANT[$cmd]}")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

APT_OPTS=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)

install() {
  $SUDO apt-get install "${APT_OPTS[@]}" "$@" >/dev/null
}

echo "udp_install: installing ${missing[*]}" >&2
if ! install "${missing[@]}"; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  install "${missing[@]}"
fi
