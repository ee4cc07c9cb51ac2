#!/bin/sh
# The image's `nautiluslb` command: checks what a `docker run` line commonly gets wrong and
# says in one line what to change, then runs NautilusLB with the permissions serve needs.
set -eu

kubeconfig="${KUBECONFIG:-${HOME:-/root}/.kube/config}"
if [ -e "$kubeconfig" ] && [ ! -r "$kubeconfig" ]; then
  echo "nautiluslb: Cannot read kubeconfig \"$kubeconfig\": permission denied for uid $(id -u): add --user \"\$(id -u):\$(id -g)\" to the run line (the file's owner), or make the file readable by uid $(id -u)" >&2
  exit 2
fi

# --unstable-net: `Deno.listen({ reusePort })`, so `settings.workers` above 1 can share ports.
# --cached-only: the image cached every dependency at build time; nothing is fetched now.
exec deno run --quiet --cached-only --unstable-net --allow-net --allow-read --allow-env \
  /app/src/main.ts "$@"
