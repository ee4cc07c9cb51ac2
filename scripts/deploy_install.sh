#!/usr/bin/env bash
# Installs what the deployment tests (tests/deploy/) need with apt-get, only what is missing:
# podman, buildah, runc and debootstrap (the image), Prometheus and promtool (monitoring),
# systemd-analyze, setpriv and prlimit (the systemd unit and the pods' credentials), ip and
# sysctl (network namespaces), kubectl (kustomize; Debian's kubernetes-client), podman's network
# backend (netavark, aardvark-dns, iptables). Then puts
# Deno at /usr/local/bin/deno as docs/deploy.md does on a VM, where the unit runs it.
# Idempotent and non-interactive; waits for another apt process to release its lock.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

# command -> package
declare -A WANT=(
  [podman]=podman
  [buildah]=buildah
  [runc]=runc
  [debootstrap]=debootstrap
  [prometheus]=prometheus
  [promtool]=prometheus
  [systemd-analyze]=systemd
  [setpriv]=util-linux
  [prlimit]=util-linux
  [ip]=iproute2
  [sysctl]=procps
  [kubectl]=kubernetes-client
)

missing=()
for cmd in "${!WANT[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
    missing+=("${WANT[$cmd]}")
  fi
done
# Packages without a command on PATH: podman's network backend and what it programs.
for pkg in netavark aardvark-dns iptables; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  APT_OPTS=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
  echo "deploy_install: installing ${missing[*]}" >&2
  if ! $SUDO apt-get install "${APT_OPTS[@]}" "${missing[@]}" >/dev/null; then
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    $SUDO apt-get install "${APT_OPTS[@]}" "${missing[@]}" >/dev/null
  fi
  # Debian's prometheus package starts a server on :9090; the tests start their own.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

if [ ! -x /usr/local/bin/deno ]; then
  version=$(sed -n 's/^DENO_VERSION=//p' .ci/run)
  deno_bin=$(npx -y "deno@${version:-2.9.6}" eval --quiet 'console.log(Deno.execPath())')
  $SUDO install -m 0755 "$deno_bin" /usr/local/bin/deno
fi
