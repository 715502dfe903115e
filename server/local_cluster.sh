#!/usr/bin/env bash
# A local amaters cluster for development: N amaters-server processes on 127.0.0.1.
#
#   bazel run //server:local_cluster -- [--nodes=3] [--tls] [--base-port=P|auto] [--dir=DIR]
#
# See --help (below) and docs/deployment-guide.md ("Local cluster for development").
set -uo pipefail

readonly PROG="local_cluster"
readonly MAX_NODES=7
readonly PORT_STRIDE=10  # node i uses base + (i-1)*10 + {0 client, 1 peer, 2 admin}

usage() {
  cat <<'EOF'
usage: bazel run //server:local_cluster -- [FLAGS]

Starts N amaters-server processes on 127.0.0.1, waits until every node is ready, prints their
endpoints and example commands, and stays in the foreground. Ctrl-C or SIGTERM stops every node
(SIGTERM, then SIGKILL after --stop-timeout) and exits 0.

Flags:
  --nodes=N            cluster size, 1..7 (default 3)
  --tls                TLS on the client and peer ports (mutual TLS between peers) with a
                       throwaway CA and per-node certificates made by the openssl CLI
  --base-port=P|auto   first port (default 7878); "auto" picks a free range in 20000..40000, below
                       the kernel's ephemeral ports, and moves to another range
                       if a port is taken while the nodes start.
                       Node i (1-based) listens on
                         client gRPC  P + 10*(i-1)       (etcd v3 API; amaters-ctl, etcdctl)
                         peer gRPC    P + 10*(i-1) + 1   (Raft traffic between nodes)
                         admin HTTP   P + 10*(i-1) + 2   (/health /readyz /status /metrics)
                       so the default is node1 7878/7879/7880, node2 7888/7889/7890, ...
  --dir=DIR            where configs, data, logs and certificates go (default: local-cluster
                       in the directory `bazel run` was started from). Data is kept between
                       runs with the same --nodes; --clean starts from empty data.
  --clean              delete DIR's previous contents first (only a directory this script made)
  --set=SECTION.KEY=V  passed to every server (repeatable), e.g. --set=storage.wal.sync_mode=none
  --ready-timeout=SEC  how long to wait for every node to be ready (default 30)
  --stop-timeout=SEC   how long to wait after SIGTERM before SIGKILL (default 15; the servers'
                       server.shutdown_timeout_ms is 10 s by default)
  --server-bin=PATH    amaters-server to run (default: from this target's runfiles)
  --ctl-bin=PATH       amaters-ctl to print in the examples (default: from the runfiles)
  --help               this text

Files in DIR:
  nodeN.toml           node N's configuration (amaters-server --config=DIR/nodeN.toml)
  nodeN.log            node N's log (stdout and stderr)
  data/nodeN/          node N's data directory: wal/, kv/, amaters-server.pid
  tls/                 with --tls: ca.crt, ca.key, nodeN.crt, nodeN.key, client.crt, client.key

When every node answers GET /readyz with 200, a line
  ready: nodes=N endpoints=HOST:PORT,... pids=PID,...
is printed. The servers run in sessions of their own, so a Ctrl-C in the terminal reaches only
this script, which stops them in order; should the script be killed with SIGKILL, stop them
with `kill PID` (the pids are in the table). Exit status: 0 after a requested stop; 1 when the cluster cannot be started or every
node has died; 2 for a usage error.
EOF
}

die_usage() {
  echo "$PROG: $*" >&2
  echo "$PROG: see --help" >&2
  exit 2
}

die() {
  echo "$PROG: error: $*" >&2
  exit 1
}

# --- flags -------------------------------------------------------------------------------------

NODES=3
TLS=0
BASE_PORT=7878
DIR=""
CLEAN=0
READY_TIMEOUT=30
STOP_TIMEOUT=15
SERVER_BIN=""
CTL_BIN=""
SETS=()

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

while (($# > 0)); do
  arg="$1"
  shift
  name="${arg%%=*}"
  if [[ "$arg" == *=* ]]; then
    value="${arg#*=}"
    has_value=1
  else
    value=""
    has_value=0
  fi
  case "$name" in
    --help | -h) usage; exit 0 ;;
    --tls) ((has_value)) && die_usage "--tls takes no value"; TLS=1; continue ;;
    --clean) ((has_value)) && die_usage "--clean takes no value"; CLEAN=1; continue ;;
    --nodes | --base-port | --dir | --set | --ready-timeout | --stop-timeout | --server-bin | --ctl-bin)
      if ((!has_value)); then
        (($# > 0)) || die_usage "$name needs a value"
        value="$1"
        shift
      fi
      ;;
    *) die_usage "unknown flag $arg" ;;
  esac
  case "$name" in
    --nodes) NODES="$value" ;;
    --base-port) BASE_PORT="$value" ;;
    --dir) DIR="$value" ;;
    --set) SETS+=("--set=$value") ;;
    --ready-timeout) READY_TIMEOUT="$value" ;;
    --stop-timeout) STOP_TIMEOUT="$value" ;;
    --server-bin) SERVER_BIN="$value" ;;
    --ctl-bin) CTL_BIN="$value" ;;
  esac
done

if ! is_uint "$NODES" || ((10#$NODES < 1 || 10#$NODES > MAX_NODES)); then
  die_usage "--nodes must be 1..$MAX_NODES, not \"$NODES\""
fi
NODES=$((10#$NODES))
is_uint "$READY_TIMEOUT" && ((10#$READY_TIMEOUT > 0)) || die_usage "--ready-timeout takes seconds > 0"
is_uint "$STOP_TIMEOUT" && ((10#$STOP_TIMEOUT > 0)) || die_usage "--stop-timeout takes seconds > 0"
READY_TIMEOUT=$((10#$READY_TIMEOUT))
STOP_TIMEOUT=$((10#$STOP_TIMEOUT))
readonly SPAN=$(((NODES - 1) * PORT_STRIDE + 2))  # highest port offset used
if [[ "$BASE_PORT" != auto ]]; then
  if ! is_uint "$BASE_PORT" || ((10#$BASE_PORT < 1 || 10#$BASE_PORT + SPAN > 65535)); then
    die_usage "--base-port must be auto or a port such that base+$SPAN <= 65535, not \"$BASE_PORT\""
  fi
  BASE_PORT=$((10#$BASE_PORT))
fi

# --- binaries ----------------------------------------------------------------------------------

# Runfiles of an sh_binary under Bazel 4: `bazel run` starts "$0" (bazel-bin/server/local_cluster)
# with the runfiles tree at "$0.runfiles/amaters/..." (also the working directory); as a data
# dependency of a test the tree is the test's ($RUNFILES_DIR / $TEST_SRCDIR). The manifest is
# the fallback when the tree is not built (--nobuild_runfile_links).
START_DIR="$PWD"
SELF="$0"
[[ "$SELF" == /* ]] || SELF="$START_DIR/$SELF"

runfile() {
  local rel="amaters/$1" root
  for root in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$SELF.runfiles"; do
    if [[ -n "$root" && -x "$root/$rel" ]]; then
      echo "$root/$rel"
      return 0
    fi
  done
  local manifest
  for manifest in "${RUNFILES_MANIFEST_FILE:-}" "$SELF.runfiles_manifest" "$SELF.runfiles/MANIFEST"; do
    if [[ -n "$manifest" && -f "$manifest" ]]; then
      local path
      path="$(awk -v k="$rel" '$1 == k { print $2; exit }' "$manifest")"
      if [[ -n "$path" && -x "$path" ]]; then
        echo "$path"
        return 0
      fi
    fi
  done
  # Inside a runfiles tree without the variables: <root>/amaters/server/local_cluster.
  local here
  here="$(cd "$(dirname "$SELF")" && pwd)"
  if [[ -x "$here/../$1" ]]; then
    echo "$here/../$1"
    return 0
  fi
  return 1
}

if [[ -z "$SERVER_BIN" ]]; then
  SERVER_BIN="$(runfile server/amaters-server)" ||
    die "cannot find amaters-server in the runfiles of $SELF; run me with \`bazel run //server:local_cluster\` or pass --server-bin=PATH"
fi
[[ -x "$SERVER_BIN" ]] || die "--server-bin: $SERVER_BIN is not an executable file"
if [[ -z "$CTL_BIN" ]]; then
  CTL_BIN="$(runfile server/ctl/amaters-ctl)" || CTL_BIN=""
fi
# Absolute paths: the servers are started from DIR.
SERVER_BIN="$(cd "$(dirname "$SERVER_BIN")" && pwd)/$(basename "$SERVER_BIN")"
[[ -z "$CTL_BIN" ]] || CTL_BIN="$(cd "$(dirname "$CTL_BIN")" && pwd)/$(basename "$CTL_BIN")"

# --- directory ---------------------------------------------------------------------------------

BASE_DIR="${BUILD_WORKING_DIRECTORY:-$START_DIR}"
[[ -n "$DIR" ]] || DIR="$BASE_DIR/local-cluster"
[[ "$DIR" == /* ]] || DIR="$BASE_DIR/$DIR"
readonly MARKER_NAME="local-cluster.info"

if [[ -e "$DIR" && ! -d "$DIR" ]]; then
  die "--dir: $DIR exists and is not a directory"
fi
# A cluster already running from DIR (its pid files name live processes) keeps it.
for pidfile in "$DIR"/data/node*/amaters-server.pid; do
  [[ -f "$pidfile" ]] || continue
  pid="$(tr -dc '0-9' <"$pidfile")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    die "an amaters-server (pid $pid, $pidfile) already runs from $DIR; stop it first or use another --dir"
  fi
done
if ((CLEAN)) && [[ -d "$DIR" ]]; then
  if [[ -f "$DIR/$MARKER_NAME" ]]; then
    rm -rf -- "$DIR" || die "cannot delete $DIR"
  elif [[ -n "$(ls -A "$DIR")" ]]; then
    die "--clean: $DIR was not made by $PROG (no $MARKER_NAME in it); not deleting it"
  fi
fi
mkdir -p "$DIR/data" || die "cannot create $DIR"
DIR="$(cd "$DIR" && pwd)"
readonly MARKER="$DIR/$MARKER_NAME"
if [[ -f "$MARKER" ]]; then
  previous="$(sed -n 's/^nodes=//p' "$MARKER")"
  if [[ -n "$previous" && "$previous" != "$NODES" ]]; then
    die "$DIR holds the data of a $previous-node cluster; use --nodes=$previous, another --dir, or --clean"
  fi
fi
printf 'nodes=%s\n# made by bazel run //server:local_cluster; safe to delete when no node runs\n' \
  "$NODES" >"$MARKER"

# --- ports -------------------------------------------------------------------------------------

# A port is taken when something accepts a connection on 127.0.0.1 there (a listener on
# 127.0.0.1, 0.0.0.0 or [::]).
port_in_use() {
  if command -v timeout >/dev/null; then
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

client_port() { echo $((BASE_PORT + ($1 - 1) * PORT_STRIDE)); }
peer_port() { echo $((BASE_PORT + ($1 - 1) * PORT_STRIDE + 1)); }
admin_port() { echo $((BASE_PORT + ($1 - 1) * PORT_STRIDE + 2)); }

# Prints the ports of the cluster at base $1 that are in use; nothing when all are free.
busy_ports() {
  local base=$1 i p
  for ((i = 0; i < NODES; i++)); do
    for p in $((base + i * PORT_STRIDE)) $((base + i * PORT_STRIDE + 1)) $((base + i * PORT_STRIDE + 2)); do
      if port_in_use "$p"; then echo "$p"; fi
    done
  done
}

# The kernel's ephemeral range (outgoing connections, port 0) can take any of its ports at any
# moment, so "auto" stays below it where it can.
auto_range_top() {
  local low=32768 high
  read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
  if ((low - SPAN - 1 > 21000 && low - SPAN - 1 < 40000)); then echo $((low - SPAN - 1)); else echo 40000; fi
}

# Picks BASE_PORT: a random base in 20000..top whose ports are all free.
pick_auto_base() {
  local top try candidate
  top="$(auto_range_top)"
  for ((try = 0; try < 50; try++)); do
    candidate=$((20000 + (RANDOM * 32768 + RANDOM) % (top - 20000)))
    if [[ -z "$(busy_ports "$candidate")" ]]; then
      BASE_PORT=$candidate
      return 0
    fi
  done
  die "--base-port=auto: no free range of $((SPAN + 1)) ports found in 20000..$top"
}

AUTO_PORT=0
if [[ "$BASE_PORT" == auto ]]; then
  AUTO_PORT=1
  pick_auto_base
else
  busy="$(busy_ports "$BASE_PORT" | tr '\n' ' ')"
  if [[ -n "$busy" ]]; then
    die "port(s) already in use on 127.0.0.1: ${busy% } (another local cluster or amaters-server running?). Stop it, or choose --base-port=P or --base-port=auto"
  fi
fi

peers_toml() {
  local i out=""
  for ((i = 1; i <= NODES; i++)); do
    out+="${out:+, }\"$i:127.0.0.1:$(peer_port "$i")\""
  done
  echo "$out"
}

# --- TLS ---------------------------------------------------------------------------------------

TLS_DIR="$DIR/tls"
make_certs() {
  command -v openssl >/dev/null || die "--tls needs the openssl command (Debian: apt-get install openssl)"
  rm -rf -- "$TLS_DIR"
  mkdir -p "$TLS_DIR" && chmod 700 "$TLS_DIR" || die "cannot create $TLS_DIR"
  local log="$TLS_DIR/openssl.log"
  # Our own openssl config, so that the system's openssl.cnf defaults do not matter.
  cat >"$TLS_DIR/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = amaters local-cluster
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  (
    set -e
    cd "$TLS_DIR"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
    openssl req -new -x509 -config openssl.cnf -extensions v3_ca -key ca.key -sha256 -days 30 \
      -subj "/CN=amaters local-cluster CA" -out ca.crt
    local name
    for name in $(seq -f 'node%g' 1 "$NODES") client; do
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key"
      openssl req -new -config openssl.cnf -key "$name.key" -subj "/CN=amaters-$name" -out "$name.csr"
      openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 30 \
        -extfile openssl.cnf -extensions v3_leaf -out "$name.crt"
      rm -f "$name.csr"
    done
    chmod 600 ./*.key
  ) >"$log" 2>&1 || {
    cat "$log" >&2
    die "openssl failed making the test certificates (output above, also in $log)"
  }
}
((TLS)) && make_certs

# --- configuration -----------------------------------------------------------------------------

write_config() {
  local i=$1 cfg="$DIR/node$1.toml"
  {
    echo "# Node $i of a $NODES-node local cluster, written by \`bazel run //server:local_cluster\`."
    echo "# Rewritten on every run; start this node alone with: amaters-server --config=$cfg"
    echo
    echo "[server]"
    echo "bind_address = \"127.0.0.1:$(client_port "$i")\""
    echo "data_dir = \"$DIR/data/node$i\""
    echo
    echo "[cluster]"
    echo "node_id = $i"
    echo "peers = [$(peers_toml)]"
    echo
    echo "[metrics]"
    echo "bind_address = \"127.0.0.1:$(admin_port "$i")\""
    if ((TLS)); then
      echo
      echo "[network]"
      echo "tls_enabled = true"
      echo "tls_cert = \"$TLS_DIR/node$i.crt\""
      echo "tls_key = \"$TLS_DIR/node$i.key\""
      echo "# Verifies peer certificates (mutual TLS between nodes); clients need no certificate."
      echo "tls_ca = \"$TLS_DIR/ca.crt\""
    fi
  } >"$cfg" || die "cannot write $cfg"
}

write_configs() {
  local i out
  for ((i = 1; i <= NODES; i++)); do
    write_config "$i"
    if ! out="$("$SERVER_BIN" validate-config --config="$DIR/node$i.toml" "${SETS[@]}" 2>&1)"; then
      die "node $i's configuration is invalid: $out"
    fi
  done
}
write_configs

reserved_env() {
  case "$1" in
    AMATERS_TEST_* | AMATERS_SIM_* | AMATERS_BENCH_* | AMATERS_FUZZ_* | AMATERS_SEED | AMATERS_KV_SEED | AMATERS_REWRITE) return 0 ;;
  esac
  return 1
}
while IFS='=' read -r var _; do
  if [[ "$var" == AMATERS_* ]] && ! reserved_env "$var"; then
    echo "$PROG: warning: $var is set and overrides the configuration of every node" >&2
  fi
done < <(env)

# --- processes ---------------------------------------------------------------------------------

PIDS=()     # PIDS[i]: pid of node i, "" once it has been reaped
STOPPING=0
FORCE=0

alive() {
  local pid=$1 stat
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A zombie (not yet reaped) is not alive.
  if read -r stat <"/proc/$pid/stat" 2>/dev/null; then
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]] || return 1
  fi
  return 0
}

# Stops every node still running: SIGTERM, then SIGKILL after STOP_TIMEOUT (or at once on a
# second Ctrl-C). Idempotent.
stop_all() {
  local i pid deadline left
  for ((i = 1; i <= NODES; i++)); do
    pid="${PIDS[i]:-}"
    if alive "$pid"; then kill -TERM "$pid" 2>/dev/null; fi
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  while :; do
    left=0
    for ((i = 1; i <= NODES; i++)); do
      if alive "${PIDS[i]:-}"; then left=$((left + 1)); fi
    done
    ((left == 0)) && break
    if ((SECONDS >= deadline || FORCE)); then
      for ((i = 1; i <= NODES; i++)); do
        pid="${PIDS[i]:-}"
        if alive "$pid"; then
          echo "$PROG: node $i (pid $pid) did not stop in time; sending SIGKILL" >&2
          kill -KILL "$pid" 2>/dev/null
        fi
      done
      FORCE=0
      deadline=$((SECONDS + 5))
    fi
    sleep 0.1
  done
  for ((i = 1; i <= NODES; i++)); do
    pid="${PIDS[i]:-}"
    if [[ -n "$pid" ]]; then
      wait "$pid" 2>/dev/null
      PIDS[i]=""
    fi
  done
}

on_signal() {
  if ((STOPPING)); then
    FORCE=1
  else
    STOPPING=1
  fi
}
trap on_signal INT TERM
trap 'stop_all' EXIT

# Servers get a session of their own, so that a Ctrl-C in the terminal reaches only this script,
# which then stops them in order.
SETSID=()
command -v setsid >/dev/null && SETSID=(setsid)

start_nodes() {
  local i log
  for ((i = 1; i <= NODES; i++)); do
    mkdir -p "$DIR/data/node$i" || die "cannot create $DIR/data/node$i"
    log="$DIR/node$i.log"
    : >"$log" || die "cannot write $log"
    cd "$DIR" || die "cannot enter $DIR"
    "${SETSID[@]}" "$SERVER_BIN" start --config="$DIR/node$i.toml" "${SETS[@]}" </dev/null >>"$log" 2>&1 &
    PIDS[i]=$!
    cd "$START_DIR" || true
  done
}

# GET http://127.0.0.1:$1$2; prints the HTTP status code (000 when nothing answers).
http_code() {
  if command -v curl >/dev/null; then
    curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1$2" 2>/dev/null || true
    return
  fi
  local fd line code="000"
  if exec {fd}<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null; then
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&"$fd"
    if read -r -t 2 line <&"$fd"; then
      code="$(echo "$line" | awk '{ print $2 }')"
    fi
    exec {fd}>&-
  fi
  echo "$code"
}

died_message() {
  local i=$1 status=$2
  echo "$PROG: node $i (pid ${PIDS[i]}) exited unexpectedly with status $status; last lines of $DIR/node$i.log:" >&2
  tail -n 5 "$DIR/node$i.log" | sed 's/^/    /' >&2
}

# Waits until every node answers /readyz. Returns 0 when all are ready, 1 when a node exited
# because one of its ports was taken after pick_auto_base checked it (only with --base-port=auto:
# another process may bind any free port at any time); dies otherwise.
wait_ready() {
  local i status pending not_ready deadline=$((SECONDS + READY_TIMEOUT))
  READY=()
  while :; do
    ((STOPPING)) && { echo "$PROG: interrupted before the cluster was ready; stopping"; stop_all; exit 0; }
    pending=0
    for ((i = 1; i <= NODES; i++)); do
      [[ "${READY[i]:-0}" == 1 ]] && continue
      if ! alive "${PIDS[i]}"; then
        wait "${PIDS[i]}"
        status=$?
        died_message "$i" "$status"
        PIDS[i]=""
        stop_all
        if ((AUTO_PORT)) && grep -q "Address already in use" "$DIR/node$i.log"; then return 1; fi
        die "the cluster did not start (node $i failed)"
      fi
      if [[ "$(http_code "$(admin_port "$i")" /readyz)" == 200 ]]; then
        READY[i]=1
      else
        pending=$((pending + 1))
      fi
    done
    ((pending == 0)) && return 0
    if ((SECONDS >= deadline)); then
      not_ready=""
      for ((i = 1; i <= NODES; i++)); do
        [[ "${READY[i]:-0}" == 1 ]] || not_ready+=" $i"
      done
      stop_all
      die "not ready after ${READY_TIMEOUT}s: node(s)$not_ready (see $DIR/node*.log)"
    fi
    sleep 0.2
  done
}

readonly MAX_PORT_ATTEMPTS=5
echo "$PROG: starting $NODES node(s) in $DIR (TLS $( ((TLS)) && echo on || echo off))"
for ((attempt = 1; ; attempt++)); do
  start_nodes
  wait_ready && break
  ((attempt < MAX_PORT_ATTEMPTS)) ||
    die "the cluster did not start: a port was taken by another process $MAX_PORT_ATTEMPTS times (--base-port=auto)"
  pick_auto_base
  write_configs
  echo "$PROG: a port was taken by another process; trying again on ports from $BASE_PORT"
done

# --- the table ---------------------------------------------------------------------------------

ENDPOINTS=""
PID_LIST=""
for ((i = 1; i <= NODES; i++)); do
  ENDPOINTS+="${ENDPOINTS:+,}127.0.0.1:$(client_port "$i")"
  PID_LIST+="${PID_LIST:+,}${PIDS[i]}"
done
LAST_ENDPOINT="127.0.0.1:$(client_port "$NODES")"
CTL_TLS=""
ETCDCTL_EPS="$ENDPOINTS"
ETCDCTL_TLS=""
if ((TLS)); then
  CTL_TLS=" --cacert=$TLS_DIR/ca.crt"
  ETCDCTL_EPS="https://${ENDPOINTS//,/,https://}"
  ETCDCTL_TLS=" --cacert=$TLS_DIR/ca.crt"
fi

echo
echo "local cluster: $NODES node(s), TLS $( ((TLS)) && echo "on (CA $TLS_DIR/ca.crt)" || echo off), directory $DIR"
echo
printf '%-5s %-17s %-17s %-28s %-8s %s\n' node client peer admin pid log
for ((i = 1; i <= NODES; i++)); do
  printf '%-5s %-17s %-17s %-28s %-8s %s\n' "$i" "127.0.0.1:$(client_port "$i")" \
    "127.0.0.1:$(peer_port "$i")" "http://127.0.0.1:$(admin_port "$i")" "${PIDS[i]}" "$DIR/node$i.log"
done
echo
echo "try:"
echo "  bazel run //server:ctl -- --endpoints=$ENDPOINTS$CTL_TLS put hello world"
echo "  bazel run //server:ctl -- --endpoints=$LAST_ENDPOINT$CTL_TLS get hello"
echo "  bazel run //server:ctl -- --endpoints=$ENDPOINTS$CTL_TLS status"
echo "  etcdctl --endpoints=$ETCDCTL_EPS$ETCDCTL_TLS endpoint status -w table"
echo "  curl -s http://127.0.0.1:$(admin_port 1)/status"
[[ -n "$CTL_BIN" ]] && echo "  (amaters-ctl without bazel: $CTL_BIN)"
if ((TLS)); then
  echo "TLS flags: amaters-ctl --cacert=$TLS_DIR/ca.crt; etcdctl --cacert=$TLS_DIR/ca.crt with https:// endpoints."
  echo "  A client certificate (not required by the servers): --cert=$TLS_DIR/client.crt --key=$TLS_DIR/client.key"
fi
echo
echo "ready: nodes=$NODES endpoints=$ENDPOINTS pids=$PID_LIST"
echo "Ctrl-C or SIGTERM stops every node."

# --- foreground --------------------------------------------------------------------------------

while ((!STOPPING)); do
  sleep 1 &
  wait $! 2>/dev/null  # returns at once when a trapped signal arrives
  living=0
  for ((i = 1; i <= NODES; i++)); do
    pid="${PIDS[i]}"
    [[ -n "$pid" ]] || continue
    if alive "$pid"; then
      living=$((living + 1))
    elif ((!STOPPING)); then
      wait "$pid"
      died_message "$i" "$?"
      PIDS[i]=""
    fi
  done
  if ((living == 0 && !STOPPING)); then
    trap - EXIT
    die "every node has exited"
  fi
done

living=0
for ((i = 1; i <= NODES; i++)); do
  if alive "${PIDS[i]}"; then living=$((living + 1)); fi
done
echo "$PROG: stopping $living running node(s)"
stop_all
trap - EXIT
echo "$PROG: stopped"
exit 0
