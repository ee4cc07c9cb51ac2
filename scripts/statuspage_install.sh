#!/usr/bin/env bash
# Installs Chromium for the status page browser test (tests/status_page_browser_test.ts)
# with apt-get, only when it is missing. Idempotent and non-interactive; runs `apt-get
# update` only when an install fails without it, and waits for another apt process to
# release its lock.
set -euo pipefail
. "$(dirname "$0")/_apt.sh"

apt_install_missing statuspage_install \
  /usr/bin/chromium=chromium \
  /usr/share/fonts/truetype/dejavu=fonts-dejavu-core
