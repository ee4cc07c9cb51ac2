#!/usr/bin/env bash
# Installs what the admission tests start or call, only what is missing: nginx (HTTP health
# checks), socat (clients inside a network namespace), iproute2 (`ip netns`, veth pairs) and
# openssl (the HTTPS check's certificate). Idempotent and non-interactive; runs
# `apt-get update` only when an install fails without it, and waits for another apt process
# to release its lock. The e2e test also needs scripts/kube_apiserver_build.sh.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

# command -> package
declare -A WANT=(
  [nginx]=nginx
  [socat]=socat
  [ip]=iproute2
  [openssl]=openssl
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

APT_OPTS=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)

install() {
  $SUDO apt-get install "${APT_OPTS[@]}" "$@" >/dev/null
}

echo "admission_install: installing ${missing[*]}" >&2
if ! install "${missing[@]}"; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  install "${missing[@]}"
fi
