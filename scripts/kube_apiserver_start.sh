#!/usr/bin/env bash
# Runs a local etcd + kube-apiserver (built by scripts/kube_apiserver_build.sh) on 127.0.0.1
# for end-to-end tests. No controllers, scheduler or kubelets: tests create Nodes and Services.
#
# Usage:
#   scripts/kube_apiserver_start.sh [start]         start both; print KEY=VALUE lines on stdout
#   scripts/kube_apiserver_start.sh stop            stop both and remove the state directory
#   scripts/kube_apiserver_start.sh stop-apiserver  stop only kube-apiserver (simulate an outage)
#   scripts/kube_apiserver_start.sh start-apiserver start kube-apiserver again, same port
#   scripts/kube_apiserver_start.sh binary          print the path of the cached binary
#
# Env:
#   NAUTILUS_KUBE_STATE   state directory (certs, tokens, data, logs, pid files); for start a
#                         new one is made with mktemp when unset; required for the other commands
#   NAUTILUS_KUBE_CACHE   where the binary is cached (default: $HOME/.cache/nautiluslb/kube)
#
# Output of start (and start-apiserver), one per line:
#   KUBECONFIG=<admin kubeconfig>            system:masters token
#   NAUTILUS_KUBE_LB_KUBECONFIG=<kubeconfig> a token of the ServiceAccount nautiluslb/nautiluslb,
#                                            bound only by deploy/kubernetes/base/rbac.yaml, applied
#                                            unchanged (get/list/watch only)
#   NAUTILUS_KUBE_LB_USER=system:serviceaccount:nautiluslb:nautiluslb
#   NAUTILUS_KUBE_SERVER=https://127.0.0.1:<port>
#   NAUTILUS_KUBE_STATE=<state dir>
#   NAUTILUS_KUBE_CA=<ca.crt>  NAUTILUS_KUBE_ADMIN_TOKEN=<token>
set -euo pipefail

cmd="${1:-start}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
. "$here/_kube_apiserver_bin.sh"
bin="$kube_apiserver_bin"

log() { echo "kube_apiserver_start: $*" >&2; }

# A port no socket is bound to (listening or connected, per /proc/net/tcp*), below the
# kernel's ephemeral range so outgoing connections cannot take it meanwhile. Ports handed out
# by this run are skipped too.
taken_ports=" "
free_port() { # variable name
  local p low=32768
  if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  fi
  [ "$low" -gt 11000 ] || low=61000
  for _ in $(seq 1 500); do
    p=$((10000 + RANDOM % (low - 10000)))
    case "$taken_ports" in *" $p "*) continue ;; esac
    if grep -qi ":$(printf '%04X' "$p") " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      continue
    fi
    taken_ports="$taken_ports$p "
    printf -v "$1" '%s' "$p"
    return 0
  done
  log "no free port found"
  return 1
}

stop_pid() { # pidfile
  local pidfile="$1" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

wait_ready() { # state
  local state="$1" token server
  token="$(cat "$state/admin.token")"
  server="$(cat "$state/server")"
  for _ in $(seq 1 300); do
    if curl -sf --cacert "$state/ca.crt" -H "Authorization: Bearer $token" "$server/readyz" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$(cat "$state/apiserver.pid")" 2>/dev/null; then
      log "kube-apiserver exited; last log lines:"
      tail -n 30 "$state/apiserver.log" >&2
      return 1
    fi
    sleep 0.2
  done
  log "kube-apiserver not ready after 60s; last log lines:"
  tail -n 30 "$state/apiserver.log" >&2
  return 1
}

start_apiserver() { # state
  local state="$1"
  local port etcd_port
  port="$(cat "$state/port")"
  etcd_port="$(cat "$state/etcd_port")"
  "$bin" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$port" \
    --insecure-port=0 \
    --cert-dir="$state/certs" \
    --tls-cert-file="$state/server.crt" \
    --tls-private-key-file="$state/server.key" \
    --client-ca-file="$state/ca.crt" \
    --token-auth-file="$state/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-key-file="$state/sa.pub" \
    --service-account-signing-key-file="$state/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.96.0.0/16 \
    --service-node-port-range=30000-32767 \
    --enable-admission-plugins=NamespaceLifecycle \
    --disable-admission-plugins=ServiceAccount \
    --audit-policy-file="$state/audit-policy.yaml" \
    --audit-log-path="$state/audit.log" \
    --profiling=false \
    >"$state/apiserver.log" 2>&1 &
  echo $! >"$state/apiserver.pid"
  wait_ready "$state"
}

print_env() { # state
  local state="$1"
  echo "KUBECONFIG=$state/admin.kubeconfig"
  echo "NAUTILUS_KUBE_LB_KUBECONFIG=$state/nautiluslb.kubeconfig"
  echo "NAUTILUS_KUBE_LB_USER=$lb_user"
  echo "NAUTILUS_KUBE_SERVER=$(cat "$state/server")"
  echo "NAUTILUS_KUBE_STATE=$state"
  echo "NAUTILUS_KUBE_CA=$state/ca.crt"
  echo "NAUTILUS_KUBE_ADMIN_TOKEN=$(cat "$state/admin.token")"
}

write_kubeconfig() { # state file user token
  local state="$1" file="$2" user="$3" token="$4" ca
  ca="$(base64 -w0 <"$state/ca.crt")"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $(cat "$state/server")
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user@local
  context:
    cluster: local
    user: $user
current-context: $user@local
EOF
}

lb_user=system:serviceaccount:nautiluslb:nautiluslb

case "$cmd" in
start)
  if [ ! -x "$bin" ]; then
    log "no kube-apiserver at $bin; build it with scripts/kube_apiserver_build.sh"
    exit 2
  fi
  missing=()
  command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
  command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >&2
  fi

  state="${NAUTILUS_KUBE_STATE:-$(mktemp -d "${TMPDIR:-/tmp}/nautiluslb-kube.XXXXXX")}"
  mkdir -p "$state/certs" "$state/etcd"
  free_port port
  free_port etcd_port
  free_port etcd_peer_port
  echo "$port" >"$state/port"
  echo "$etcd_port" >"$state/etcd_port"
  echo "https://127.0.0.1:$port" >"$state/server"

  # Self-signed CA and a serving certificate for 127.0.0.1/localhost.
  (
    cd "$state"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=nautiluslb-test-ca" \
      -keyout ca.key -out ca.crt >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout server.key -out server.csr >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out server.crt >/dev/null 2>&1
    openssl genrsa -out sa.key 2048 >/dev/null 2>&1
    openssl rsa -in sa.key -pubout -out sa.pub >/dev/null 2>&1
  )
  admin_token="$(openssl rand -hex 16)"
  echo "$admin_token" >"$state/admin.token"
  echo "$admin_token,admin,admin-uid,system:masters" >"$state/tokens.csv"
  chmod 600 "$state/admin.token" "$state/tokens.csv"
  # Audit (metadata only) of the load balancer's identity: which verbs and resources it uses.
  cat >"$state/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["$lb_user"]
  - level: None
EOF

  etcd --name nautiluslb-test --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "nautiluslb-test=http://127.0.0.1:$etcd_peer_port" \
    >"$state/etcd.log" 2>&1 &
  echo $! >"$state/etcd.pid"

  if ! start_apiserver "$state"; then
    log "etcd log tail:"
    tail -n 5 "$state/etcd.log" >&2
    stop_pid "$state/apiserver.pid"
    stop_pid "$state/etcd.pid"
    [ -n "${NAUTILUS_KUBE_STATE:-}" ] || rm -rf "$state"
    exit 1
  fi
  write_kubeconfig "$state" "$state/admin.kubeconfig" admin "$admin_token"

  # RBAC: deploy/kubernetes/base/rbac.yaml exactly as shipped; its ServiceAccount is the only
  # subject, and the load balancer's kubeconfig holds a token of that ServiceAccount.
  applied=""
  for _ in $(seq 1 50); do
    if kubectl --kubeconfig "$state/admin.kubeconfig" apply -f "$repo/deploy/kubernetes/base/rbac.yaml" \
      >"$state/rbac.log" 2>&1; then
      applied=1
      break
    fi
    sleep 0.2
  done
  if [ -z "$applied" ]; then
    log "applying deploy/kubernetes/base/rbac.yaml failed:"
    cat "$state/rbac.log" >&2
    exit 1
  fi
  # A token from the TokenRequest API (no controller-manager runs here to fill token Secrets).
  printf '%s' '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",' \
    '"spec":{"expirationSeconds":172800}}' >"$state/token-request.json"
  lb_token="$(kubectl --kubeconfig "$state/admin.kubeconfig" create --raw \
    /api/v1/namespaces/nautiluslb/serviceaccounts/nautiluslb/token \
    -f "$state/token-request.json" 2>>"$state/rbac.log" |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p')"
  if [ -z "$lb_token" ]; then
    log "requesting a ServiceAccount token failed:"
    cat "$state/rbac.log" >&2
    exit 1
  fi
  (umask 077 && printf '%s\n' "$lb_token" >"$state/nautiluslb.token")
  write_kubeconfig "$state" "$state/nautiluslb.kubeconfig" nautiluslb "$lb_token"
  print_env "$state"
  ;;
stop)
  state="${NAUTILUS_KUBE_STATE:?set NAUTILUS_KUBE_STATE to the directory printed by start}"
  stop_pid "$state/apiserver.pid"
  stop_pid "$state/etcd.pid"
  rm -rf "$state"
  ;;
stop-apiserver)
  state="${NAUTILUS_KUBE_STATE:?set NAUTILUS_KUBE_STATE to the directory printed by start}"
  stop_pid "$state/apiserver.pid"
  ;;
start-apiserver)
  state="${NAUTILUS_KUBE_STATE:?set NAUTILUS_KUBE_STATE to the directory printed by start}"
  start_apiserver "$state"
  print_env "$state"
  ;;
binary)
  echo "$bin"
  ;;
*)
  log "unknown command '$cmd' (start, stop, stop-apiserver, start-apiserver, binary)"
  exit 2
  ;;
esac
