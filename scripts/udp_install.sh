#!/usr/bin/env bash
# Installs what the UDP tests and the UDP bench start: DNS servers (dnsmasq, unbound), DNS
# clients (kdig from knot-dnsutils, dig from bind9-dnsutils, dnsperf), nginx (stream UDP, the
# bench's peer) and iproute2 (network namespaces), with apt-get, only those missing.
# Idempotent and non-interactive; runs `apt-get update` only when an install fails without it,
# and waits for another apt process to release its lock.
set -euo pipefail
. "$(dirname "$0")/_apt.sh"

apt_install_missing udp_install \
  dnsmasq=dnsmasq \
  unbound=unbound \
  kdig=knot-dnsutils \
  dig=bind9-dnsutils \
  dnsperf=dnsperf \
  nginx=nginx \
  ip=iproute2
