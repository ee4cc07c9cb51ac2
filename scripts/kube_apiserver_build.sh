#!/usr/bin/env bash
# Builds kube-apiserver from Debian's `kubernetes` source package once and caches it.
# Usage: scripts/kube_apiserver_build.sh            (prints the binary path on the last line)
# Env:   NAUTILUS_KUBE_CACHE  cache directory (default: $HOME/.cache/nautiluslb/kube)
set -euo pipefail

. "$(dirname "$0")/_kube_apiserver_bin.sh"
cache="$kube_cache"
bin="$kube_apiserver_bin"
mkdir -p "$cache"
# modern-go/reflect2 1.0.2, swapped into the vendor tree below.
reflect2_src=/usr/share/gocode/src/github.com/modern-go/reflect2

need_pkgs=()
command -v go >/dev/null 2>&1 || need_pkgs+=(golang-go)
command -v etcd >/dev/null 2>&1 || need_pkgs+=(etcd-server)
command -v rsync >/dev/null 2>&1 || need_pkgs+=(rsync)
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v dpkg-source >/dev/null 2>&1 || need_pkgs+=(dpkg-dev)
[ -f "$reflect2_src/reflect2.go" ] || need_pkgs+=(golang-github-modern-go-reflect2-dev)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

# deb-src entries next to the binary ones, so `apt-get source` finds the package.
src_list=/etc/apt/sources.list.d/nautiluslb-src.sources
if [ ! -f "$src_list" ]; then
  tmp_list=$(mktemp)
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed 's/^Types: deb$/Types: deb-src/' "$f"
    echo
  done >"$tmp_list"
  mv "$tmp_list" "$src_list"
  apt-get update -qq
fi

work="$cache/src"
rm -rf "$work" && mkdir -p "$work"
(
  cd "$work"
  apt-get source --download-only kubernetes >/dev/null
  dsc=$(ls kubernetes_*.dsc | head -n 1)
  dpkg-source --no-check -x "$dsc" tree >/dev/null
  cd tree
  # The vendored modern-go/reflect2 1.0.1 reads Go runtime internals that changed in Go 1.18:
  # built with a later Go, the apiserver crashes encoding any custom resource (json-iterator
  # goes through reflect2). 1.0.2 fixes it and changes no API; Debian packages it. Go checks
  # vendor/modules.txt against go.mod only, not the files, so the version lines stay as they are.
  rm -rf vendor/github.com/modern-go/reflect2
  mkdir -p vendor/github.com/modern-go/reflect2
  find "$reflect2_src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' -o -name LICENSE \) \
    ! -name '*_test.go' -exec cp -t vendor/github.com/modern-go/reflect2 {} +
  CGO_ENABLED=0 GOFLAGS=-mod=vendor GO111MODULE=auto make WHAT=cmd/kube-apiserver >build.log 2>&1 || {
    tail -n 40 build.log >&2
    exit 1
  }
  out=$(find _output -type f -name kube-apiserver -perm -u+x | head -n 1)
  cp "$out" "$bin"
)
rm -rf "$work"
echo "$bin"
