#!/usr/bin/env bash
# Installs the real PROXY protocol peers the interop tests start (nginx, HAProxy) with apt-get,
# only those missing. Idempotent and non-interactive; runs `apt-get update` only when an
# install fails without it, and waits for another apt process to release its lock.
set -euo pipefail
. "$(dirname "$0")/_apt.sh"

apt_install_missing interop_install \
  haproxy=haproxy \
  nginx=nginx
