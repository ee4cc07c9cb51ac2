#!/bin/sh
# keepalived notify script: one line per VRRP state change, to syslog (tag nautiluslb-vrrp)
# and, when the first argument names a file, appended there too.
# keepalived appends: TYPE NAME STATE PRIORITY, e.g. INSTANCE nautiluslb MASTER 100.
log_file=""
if [ "$#" -gt 4 ]; then
  log_file=$1
  shift
fi
line="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $1 $2 $3 priority=$4"
logger -t nautiluslb-vrrp -- "$line" 2>/dev/null || true
if [ -n "$log_file" ]; then
  echo "$line" >>"$log_file"
fi
