#!/usr/bin/env bash
# Installs the real PROXY protocol peers the interop tests start (nginx, HAProxy) with apt-get,
# only those missing. Idempotent and non-interactive; runs `apt-get update` only when an
# install fails without it, and waits for another apt process to release its lock.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

# command -> package
declare -A WANT=(
  [haproxy]=haproxy
  [nginx]=nginx
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

# Another apt process may hold the lock for a while; wait for it instead of failing.
APT_OPTS=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)

install() {
  $SUDO apt-get install "${APT_OPTS[@]}" "$@" >/dev/null
}

echo "interop_install: installing ${missing[*]}" >&2
if ! install "${missing[@]}"; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  install "${missing[@]}"
fi
