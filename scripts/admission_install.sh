#!/usr/bin/env bash
# Installs what the admission tests start or call, only what is missing: nginx (HTTP health
# checks), socat (clients inside a network namespace), iproute2 (`ip netns`, veth pairs) and
# openssl (the HTTPS check's certificate). Idempotent and non-interactive; runs
# `apt-get update` only when an install fails without it, and waits for another apt process
# to release its lock. The e2e test also needs scripts/kube_apiserver_build.sh.
set -euo pipefail
. "$(dirname "$0")/_apt.sh"

apt_install_missing admission_install \
  nginx=nginx \
  socat=socat \
  ip=iproute2 \
  openssl=openssl
