#!/usr/bin/env bash
# Installs what the TLS routing interop tests and bench need, only what is missing: HAProxy,
# nginx with its stream module (ssl_preread), openssl, gnutls-cli and curl. Idempotent and
# non-interactive; runs `apt-get update` only when an install fails without it, and waits for
# another apt process to release its lock.
set -euo pipefail
. "$(dirname "$0")/_apt.sh"

apt_install_missing tls_install \
  /usr/sbin/haproxy=haproxy \
  /usr/sbin/nginx=nginx \
  /usr/lib/nginx/modules/ngx_stream_module.so=libnginx-mod-stream \
  /usr/bin/openssl=openssl \
  /usr/bin/gnutls-cli=gnutls-bin \
  /usr/bin/curl=curl
