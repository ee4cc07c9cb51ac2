#!/bin/sh
# Announces the NautilusLB address over BGP while this instance is ready: every
# NLB_CHECK_INTERVAL seconds it asks /readyz; NLB_CHECK_RISE successes in a row enable the
# BIRD protocol that carries the route, NLB_CHECK_FALL failures in a row disable it (a BGP
# withdraw, so the router moves this instance's flows to the others). Runs until killed.
#
#   NLB_READYZ_URL   default http://127.0.0.1:9090/readyz
#   NLB_BIRDC        default birdc (e.g. "birdc -s /run/bird/bird.ctl")
#   NLB_PROTOCOL     default nautiluslb_vip
#   NLB_CHECK_INTERVAL 0.2, NLB_CHECK_FALL 2, NLB_CHECK_RISE 3
#
# Timing rule for settings.shutdownDelay: interval x fall + the router's route update + margin
# = 0.2 s x 2 + 0.1 s + 1 s = 1.5 s.
set -u
url=${NLB_READYZ_URL:-http://127.0.0.1:9090/readyz}
birdc=${NLB_BIRDC:-birdc}
protocol=${NLB_PROTOCOL:-nautiluslb_vip}
interval=${NLB_CHECK_INTERVAL:-0.2}
fall=${NLB_CHECK_FALL:-2}
rise=${NLB_CHECK_RISE:-3}

say() {
  line="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $*"
  logger -t nautiluslb-bgp -- "$line" 2>/dev/null || true
  echo "$line"
}

announce() {
  # shellcheck disable=SC2086 # NLB_BIRDC may carry options
  if $birdc "$1" "$protocol" >/dev/null; then
    say "$2"
    return 0
  fi
  say "birdc $1 $protocol failed"
  return 1
}

state=withdrawn
passed=0
failed=0
announce disable "route withdrawn: starting" || true
trap 'announce disable "route withdrawn: stopping"; exit 0' TERM INT
while :; do
  if curl --silent --fail --max-time 1 --output /dev/null "$url"; then
    passed=$((passed + 1))
    failed=0
  else
    failed=$((failed + 1))
    passed=0
  fi
  if [ "$state" = withdrawn ] && [ "$passed" -ge "$rise" ]; then
    announce enable "route announced: /readyz passed $passed time(s)" && state=announced
  elif [ "$state" = announced ] && [ "$failed" -ge "$fall" ]; then
    announce disable "route withdrawn: /readyz failed $failed time(s)" && state=withdrawn
  fi
  sleep "$interval"
done
