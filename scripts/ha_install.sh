#!/usr/bin/env bash
# Installs what the high-availability tests (tests/ha/) start, with apt-get, only what is
# missing: keepalived, BIRD 2 (bird, birdc), curl (the /readyz checks), nftables (dropping
# VRRP adverts), iproute2 (namespaces, ss), procps (sysctl in the router namespace).
# Idempotent and non-interactive; runs `apt-get update` only when an install fails without
# it, and waits for another apt process to release its lock. The tests need root as well.
set -euo pipefail
. "$(dirname "$0")/_apt.sh"

apt_install_missing ha_install \
  keepalived=keepalived \
  bird=bird2 \
  birdc=bird2 \
  curl=curl \
  nft=nftables \
  ip=iproute2 \
  ss=iproute2 \
  logger=bsdutils \
  sysctl=procps \
  stdbuf=coreutils

# The Debian packages enable and start their own daemons; the tests run their own copies in
# network namespaces, so the host's are neither needed nor touched here.
