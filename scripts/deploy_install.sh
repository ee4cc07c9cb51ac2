#!/usr/bin/env bash
# Installs what the deployment tests (tests/deploy/) need with apt-get, only what is missing:
# podman, buildah, runc and debootstrap (the image), Prometheus and promtool (monitoring),
# systemd-analyze, setpriv and prlimit (the systemd unit and the pods' credentials), ip and
# sysctl (network namespaces), kubectl (kustomize; Debian's kubernetes-client), podman's network
# backend (netavark, aardvark-dns, iptables). Then puts
# Deno at /usr/local/bin/deno as docs/deploy.md does on a VM, where the unit runs it.
# Idempotent and non-interactive; waits for another apt process to release its lock.
set -euo pipefail
. "$(dirname "$0")/_apt.sh"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

apt_install_missing deploy_install \
  podman=podman buildah=buildah runc=runc debootstrap=debootstrap \
  prometheus=prometheus promtool=prometheus systemd-analyze=systemd \
  setpriv=util-linux prlimit=util-linux ip=iproute2 sysctl=procps kubectl=kubernetes-client \
  pkg:netavark=netavark pkg:aardvark-dns=aardvark-dns pkg:iptables=iptables
# Debian's prometheus package starts a server on :9090; the tests start their own.
if [[ " ${APT_INSTALLED[*]-} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

if [ ! -x /usr/local/bin/deno ]; then
  version=$(sed -n 's/^DENO_VERSION=//p' .ci/run)
  deno_bin=$(npx -y "deno@${version:-2.9.6}" eval --quiet 'console.log(Deno.execPath())')
  $SUDO install -m 0755 "$deno_bin" /usr/local/bin/deno
fi
