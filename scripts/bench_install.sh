#!/usr/bin/env bash
# Installs the tools `deno task bench` needs (HAProxy, nginx, wrk, iperf3, taskset, prlimit)
# with apt-get, only those missing. Idempotent and quiet; runs `apt-get update` at most once,
# and only when an install fails without it.
set -euo pipefail
. "$(dirname "$0")/_apt.sh"

apt_install_missing bench_install \
  haproxy=haproxy \
  nginx=nginx \
  wrk=wrk \
  iperf3=iperf3 \
  taskset=util-linux \
  prlimit=util-linux
