# Sourced by scripts/kube_apiserver_build.sh and scripts/kube_apiserver_start.sh: the one home
# of where the built kube-apiserver is cached.
#
# The file name says what the build changes in Debian's sources (reflect2 1.0.2, see
# kube_apiserver_build.sh): a cache holding an earlier build, which crashes on custom
# resources, is not picked up, and the build script builds anew.
kube_cache="${NAUTILUS_KUBE_CACHE:-$HOME/.cache/nautiluslb/kube}"
kube_apiserver_bin="$kube_cache/kube-apiserver-1.20-reflect2"
