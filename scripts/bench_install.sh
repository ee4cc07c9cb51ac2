#!/usr/bin/env bash
# Installs the tools `deno task bench` needs (HAProxy, nginx, wrk, iperf3, taskset, prlimit)
# with apt-get, only those missing. Idempotent and quiet; runs `apt-get update` at most once,
# and only when an install fails without it.
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
  [nginx]=nginx-light
  [wrk]=wrk
  [iperf3]=iperf3
  [taskset]=util-linux
  [prlimit]=util-linux
)

missing=()
for cmd in "${!WANT[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    pkg="${WANT[$cmd]}"
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

install() {
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

echo "bench_install: installing ${missing[*]}" >&2
if ! install "${missing[@]}"; then
  $SUDO apt-get update -qq >/dev/null 2>&1
  if ! install "${missing[@]}"; then
    # nginx-light is gone from newer releases; plain nginx serves static files as well.
    fallback=("${missing[@]/nginx-light/nginx}")
    install "${fallback[@]}"
  fi
fi
