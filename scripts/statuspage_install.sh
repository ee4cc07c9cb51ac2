#!/usr/bin/env bash
# Installs Chromium for the status page browser test (tests/status_page_browser_test.ts)
# with apt-get, only when it is missing. Idempotent and non-interactive; runs `apt-get
# update` only when an install fails without it, and waits for another apt process to
# release its lock.
set -euo pipefail

# Chromium does not depend on a font; the page's text needs one to render (and to measure).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

# Another apt process may hold the lock for a while; wait for it instead of failing.
APT_OPTS=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)

install() {
  $SUDO apt-get install "${APT_OPTS[@]}" "$@" >/dev/null
}

echo "statuspage_install: installing ${missing[*]}" >&2
if ! install "${missing[@]}"; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  install "${missing[@]}"
fi
