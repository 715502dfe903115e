#!/usr/bin/env bash
# End-to-end test of `bazel run //server:local_cluster` (server/local_cluster.sh):
#   - usage errors and --help;
#   - --nodes=3 on a free port range (--base-port=auto): waits for the "ready:" line, writes
#     through node 1 and reads through node 3 with amaters-ctl, checks /readyz on every node;
#   - a second instance on an occupied port range, and one on a directory in use, fail clearly;
#   - SIGTERM: exit status 0, every server process gone, pid files removed;
#   - the same with --tls (throwaway CA; amaters-ctl --cacert), including a plaintext client
#     being refused.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-amaters}"
SCRIPT="$RUNFILES/server/local_cluster"
CTL="$RUNFILES/server/ctl/amaters-ctl"
TMP="${TEST_TMPDIR:-$(mktemp -d)}"
START=$SECONDS

SCRIPT_PID=""
SERVER_PIDS=()
CURRENT_OUT=""

cleanup() {
  [[ -n "$SCRIPT_PID" ]] && kill -KILL "$SCRIPT_PID" 2>/dev/null
  local p
  for p in "${SERVER_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [[ -n "$CURRENT_OUT" && -f "$CURRENT_OUT" ]]; then
    echo "--- output of local_cluster ($CURRENT_OUT):" >&2
    cat "$CURRENT_OUT" >&2
  fi
  local log
  for log in "$TMP"/*/node*.log; do
    [[ -f "$log" ]] || continue
    echo "--- last lines of $log:" >&2
    tail -n 20 "$log" >&2
  done
  exit 1
}

pass() { echo "ok: $* ($((SECONDS - START))s)"; }

expect_rc() {  # expect_rc WANT DESCRIPTION CMD...
  local want=$1 what=$2 rc
  shift 2
  "$@" >"$TMP/cmd.out" 2>&1
  rc=$?
  [[ $rc == "$want" ]] || { cat "$TMP/cmd.out" >&2; fail "$what: exit status $rc, want $want"; }
}

[[ -x "$SCRIPT" ]] || fail "no $SCRIPT"
[[ -x "$CTL" ]] || fail "no $CTL"

# --- usage ---------------------------------------------------------------------------------------

expect_rc 0 "--help" "$SCRIPT" --help
grep -q -- "--nodes=N" "$TMP/cmd.out" || fail "--help does not describe --nodes"
grep -q -- "--base-port" "$TMP/cmd.out" || fail "--help does not describe --base-port"
expect_rc 2 "--nodes=8" "$SCRIPT" --nodes=8 --dir="$TMP/unused"
grep -q "1..7" "$TMP/cmd.out" || fail "--nodes=8 does not say the allowed range"
expect_rc 2 "--nodes=0" "$SCRIPT" --nodes=0 --dir="$TMP/unused"
expect_rc 2 "unknown flag" "$SCRIPT" --bogus
expect_rc 2 "--base-port=65530" "$SCRIPT" --nodes=3 --base-port=65530 --dir="$TMP/unused"
pass "usage errors"

# --- helpers -------------------------------------------------------------------------------------

READY_LINE=""
# start_cluster NAME FLAGS...: starts the script in the background and waits for its ready line.
start_cluster() {
  local name=$1
  shift
  CURRENT_OUT="$TMP/$name.out"
  "$SCRIPT" --dir="$TMP/$name" "$@" >"$CURRENT_OUT" 2>&1 &
  SCRIPT_PID=$!
  local deadline=$((SECONDS + 40))
  READY_LINE=""
  while ((SECONDS < deadline)); do
    READY_LINE="$(grep -m1 '^ready: ' "$CURRENT_OUT" || true)"
    [[ -n "$READY_LINE" ]] && break
    kill -0 "$SCRIPT_PID" 2>/dev/null || {
      wait "$SCRIPT_PID"
      fail "local_cluster $* exited with status $? before it was ready"
    }
    sleep 0.2
  done
  [[ -n "$READY_LINE" ]] || fail "no ready line within 40 s from local_cluster $*"
  # ready: nodes=3 endpoints=127.0.0.1:A,127.0.0.1:B,127.0.0.1:C pids=1,2,3
  local field
  ENDPOINTS=()
  PIDS=()
  for field in $READY_LINE; do
    case "$field" in
      endpoints=*) IFS=',' read -r -a ENDPOINTS <<<"${field#endpoints=}" ;;
      pids=*) IFS=',' read -r -a PIDS <<<"${field#pids=}" ;;
    esac
  done
  SERVER_PIDS+=("${PIDS[@]}")
}

# stop_cluster NAME: SIGTERM to the script; it must exit 0 and leave no server behind.
stop_cluster() {
  local name=$1 p rc deadline=$((SECONDS + 30))
  kill -TERM "$SCRIPT_PID" || fail "cannot signal local_cluster (pid $SCRIPT_PID)"
  while kill -0 "$SCRIPT_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -0 "$SCRIPT_PID" 2>/dev/null && fail "local_cluster still running 30 s after SIGTERM"
  wait "$SCRIPT_PID"
  rc=$?
  SCRIPT_PID=""
  [[ $rc == 0 ]] || fail "local_cluster exited with status $rc after SIGTERM, want 0"
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then fail "server pid $p still runs after local_cluster exited"; fi
  done
  local pidfile
  for pidfile in "$TMP/$name"/data/node*/amaters-server.pid; do
    [[ -e "$pidfile" ]] && fail "$pidfile left behind (no graceful shutdown?)"
  done
  local log
  for log in "$TMP/$name"/node*.log; do
    grep -q "stopped exit_code=0" "$log" || fail "$log does not end with a clean stop"
  done
  grep -q "stopped" "$CURRENT_OUT" || fail "local_cluster did not say it stopped"
}

admin_port_of() {  # the admin port of node $1 from the printed table
  awk -v n="$1" '$1 == n && $4 ~ /^http:/ { sub("http://127.0.0.1:", "", $4); print $4 }' "$CURRENT_OUT"
}

# --- three nodes, plaintext ----------------------------------------------------------------------

start_cluster plain --nodes=3 --base-port=auto
((${#ENDPOINTS[@]} == 3)) || fail "ready line lists ${#ENDPOINTS[@]} endpoints, want 3: $READY_LINE"
((${#PIDS[@]} == 3)) || fail "ready line lists ${#PIDS[@]} pids, want 3: $READY_LINE"
for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || fail "server pid $p from the ready line is not running"; done
for n in 1 2 3; do
  [[ -f "$TMP/plain/node$n.toml" ]] || fail "no node$n.toml"
  port="$(admin_port_of "$n")"
  [[ -n "$port" ]] || fail "no admin port for node $n in the table"
  if command -v curl >/dev/null; then
    curl -sf "http://127.0.0.1:$port/readyz" | grep '"ready":true' >/dev/null || fail "node $n /readyz is not ready"
  fi
done
pass "3 nodes ready: ${ENDPOINTS[*]}"

value="v-$RANDOM-$$"
"$CTL" --endpoints="${ENDPOINTS[0]}" --timeout=5s put local-cluster-test "$value" >"$TMP/put.out" 2>&1 ||
  { cat "$TMP/put.out" >&2; fail "put through node 1 failed"; }
grep -qx OK "$TMP/put.out" || fail "put printed $(cat "$TMP/put.out"), want OK"
"$CTL" --endpoints="${ENDPOINTS[2]}" --timeout=5s get local-cluster-test >"$TMP/get.out" 2>&1 ||
  { cat "$TMP/get.out" >&2; fail "get through node 3 failed"; }
[[ "$(cat "$TMP/get.out")" == "local-cluster-test"$'\n'"$value" ]] ||
  fail "get through node 3 printed '$(cat "$TMP/get.out")', want the key and $value"
pass "put through node 1, get through node 3"

# The same port range again: refused before anything starts.
first_port="${ENDPOINTS[0]##*:}"
expect_rc 1 "second cluster on busy ports" "$SCRIPT" --nodes=1 --base-port="$first_port" --dir="$TMP/busy"
grep -q "already in use" "$TMP/cmd.out" || fail "busy ports: message does not say 'already in use': $(cat "$TMP/cmd.out")"
grep -q "$first_port" "$TMP/cmd.out" || fail "busy ports: message does not name port $first_port"
# The same directory again (on free ports): refused, the running cluster untouched.
expect_rc 1 "second cluster in a directory in use" "$SCRIPT" --nodes=3 --base-port=auto --dir="$TMP/plain"
grep -q "already runs" "$TMP/cmd.out" || fail "directory in use: unexpected message: $(cat "$TMP/cmd.out")"
pass "busy ports and a busy directory are refused"

stop_cluster plain
pass "SIGTERM stops every node, exit status 0"

# --- three nodes, TLS ----------------------------------------------------------------------------

if command -v openssl >/dev/null; then
  start_cluster tls --nodes=3 --tls --base-port=auto
  CA="$TMP/tls/tls/ca.crt"
  [[ -f "$CA" ]] || fail "--tls made no $CA"
  grep -q -- "--cacert=$CA" "$CURRENT_OUT" || fail "--tls does not print the --cacert flag"
  grep -q "tls_enabled = true" "$TMP/tls/node1.toml" || fail "node1.toml has no tls_enabled = true"
  "$CTL" --endpoints="${ENDPOINTS[1]}" --cacert="$CA" --timeout=5s put tls-key tls-value >"$TMP/put.out" 2>&1 ||
    { cat "$TMP/put.out" >&2; fail "TLS put through node 2 failed"; }
  "$CTL" --endpoints="${ENDPOINTS[2]}" --cacert="$CA" --timeout=5s get tls-key >"$TMP/get.out" 2>&1 ||
    { cat "$TMP/get.out" >&2; fail "TLS get through node 3 failed"; }
  [[ "$(cat "$TMP/get.out")" == $'tls-key\ntls-value' ]] || fail "TLS get printed '$(cat "$TMP/get.out")'"
  if "$CTL" --endpoints="${ENDPOINTS[2]}" --timeout=2s --dial-timeout=1s get tls-key >/dev/null 2>&1; then
    fail "a plaintext client got an answer from a TLS port"
  fi
  stop_cluster tls
  pass "--tls: put/get with --cacert, plaintext refused, SIGTERM stops every node"
else
  echo "skipped: --tls (no openssl command)"
fi

echo "PASS ($((SECONDS - START))s)"
