#!/usr/bin/env bash
# Hands the listeners of a running `nautiluslb serve` over to a new process without losing
# a connection (restart or upgrade):
#
#   1. start the new process with `serve --handover`: the same listeners, bound with
#      SO_REUSEPORT next to the old ones (Linux, `deno run --unstable-net`), and its own
#      admin address (without --handover, serve refuses a port another process serves);
#   2. wait until its /readyz answers 200 (pools resolved, first health round done);
#   3. send SIGTERM to the old process: it stops accepting and drains its connections;
#   4. wait until the old process has exited.
#
# If the new process dies or never gets ready, the old one is left alone and the script
# exits 1. Set net.ipv4.tcp_migrate_req=1 (Linux >= 5.14) so connections still queued on
# the old listener move to the new one instead of being reset (see docs/reload_and_handover.md).
#
# Usage:
#   scripts/handover.sh OLD_PID NEW_ADMIN_ADDRESS -- COMMAND [ARGS...]
# Example:
#   scripts/handover.sh "$(cat /run/nautiluslb.pid)" 127.0.0.1:9091 -- \
#     deno run --unstable-net --allow-net --allow-read --allow-env src/main.ts serve \
#       --handover -c config.yaml --admin-address 127.0.0.1:9091
#
# Environment: READY_TIMEOUT (seconds, default 60), EXIT_TIMEOUT (seconds the old process
# may take to drain and exit, default 120), NEW_PID_FILE (where to write the new PID).
set -euo pipefail

if [[ $# -lt 4 || $3 != "--" ]]; then
  echo "usage: $0 OLD_PID NEW_ADMIN_ADDRESS -- COMMAND [ARGS...]" >&2
  exit 2
fi
old_pid=$1
admin=$2
shift 3
ready_timeout=${READY_TIMEOUT:-60}
exit_timeout=${EXIT_TIMEOUT:-120}

if ! kill -0 "$old_pid" 2>/dev/null; then
  echo "handover: no process $old_pid" >&2
  exit 2
fi

ready_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$admin/readyz" || true
}

# 1. The new process, detached from this shell so it outlives the script.
"$@" </dev/null &
new_pid=$!
disown "$new_pid" 2>/dev/null || true
[[ -n ${NEW_PID_FILE:-} ]] && echo "$new_pid" >"$NEW_PID_FILE"
echo "handover: started $new_pid, waiting for http://$admin/readyz"

# 2. Ready, or give up and leave the old process serving.
deadline=$((SECONDS + ready_timeout))
until [[ $(ready_status) == 200 ]]; do
  if ! kill -0 "$new_pid" 2>/dev/null; then
    echo "handover: new process $new_pid exited before it was ready; $old_pid keeps serving" >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "handover: $new_pid not ready after ${ready_timeout}s; stopping it, $old_pid keeps serving" >&2
    kill -TERM "$new_pid" 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done
echo "handover: $new_pid is ready; stopping $old_pid"

# 3. The old process stops accepting and drains.
kill -TERM "$old_pid"

# 4. Wait for it to exit (it is not our child: poll).
deadline=$((SECONDS + exit_timeout))
while kill -0 "$old_pid" 2>/dev/null; do
  if ((SECONDS >= deadline)); then
    echo "handover: $old_pid still running after ${exit_timeout}s" >&2
    exit 1
  fi
  sleep 0.1
done
echo "handover: done; $new_pid serves"
