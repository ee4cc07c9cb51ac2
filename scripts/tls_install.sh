#!/usr/bin/env bash
# Installs what the TLS routing interop tests and bench need, only what is missing: HAProxy,
# nginx with its stream module (ssl_preread), openssl, gnutls-cli and curl. Idempotent and
# non-interactive; runs `apt-get update` only when an install fails without it, and waits for
# another apt process to release its lock.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

# path that proves it is there -> package
declare -A WANT=(
  [/usr/sbin/haproxy]=haproxy
  [/usr/sbin/nginx]=nginx
  [/usr/lib/nginx/modules/ngx_stream_module.so]=libnginx-mod-stream
  [/usr/bin/openssl]=openssl
  [/usr/bin/gnutls-cli]=gnutls-bin
  [/usr/bin/curl]=curl
)

missing=()
for path in "${!WANT[@]}"; do
  if [ ! -e "$path" ]; then
    missing+=("${WANT[$path]}")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

APT_OPTS=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)

install() {
  $SUDO apt-get install "${APT_OPTS[@]}" "$@" >/dev/null
}

echo "tls_install: installing ${missing[*]}" >&2
if ! install "${missing[@]}"; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  install "${missing[@]}"
fi
