#!/usr/bin/env bash
# Runs, for real, the commands that docs/runbooks.md and docs/troubleshooting-guide.md tell an
# operator to use, against real amaters-server processes on 127.0.0.1, and checks that their
# output looks the way those documents say:
#
#   - a healthy three-node cluster: /health, /healthz, /readyz, /status, /alerts (empty),
#     /metrics | grep, `amaters-ctl status`, `etcdctl endpoint status -w table`,
#     `amaters-server status --config=...`;
#   - RB-001: kill -9 a follower -> the leader's /alerts shows node_failed:<id> once, the log
#     line, amaters_alerts_total, amaters_peer_connected 0, /health degraded; restart ->
#     node_recovered:<id>, /health healthy;
#   - RB-003: SIGSTOP a follower while writing -> slow_replication:<id> and
#     amaters_peer_replication_lag_entries; SIGCONT -> the lag returns to 0;
#   - RB-005 and SIGHUP: min_free_bytes raised in the file + kill -HUP -> "SIGHUP: configuration
#     reloaded", writes refused with RESOURCE_EXHAUSTED "disk nearly full", amaters_accepting_writes
#     0, /health 503; lowered again + kill -HUP -> accepting writes, amaters_accepting_writes 1;
#   - RB-002: kill -9 two of three -> quorum_lost on the survivor, /readyz 503, writes refused at
#     once with UNAVAILABLE "no quorum"; restart them -> ready and writable again;
#   - RB-006: a flipped byte in a follower's WAL -> the server refuses to start naming the file
#     and offset and changes no file; the data directory moved aside -> the node starts empty
#     and catches up from the leader (here by log replay: the test writes fewer entries than
#     a snapshot threshold; snapshot_test covers the catch-up by snapshot) and serves the data;
#   - RB-004 (needs openssl): one TLS node with a 20-day certificate -> certificate_expiring
#     warning and the expiry gauge; rotation by rename + kill -HUP -> "SIGHUP: TLS certificate
#     reloaded", the new serial on new connections (openssl s_client), critical for a 5-day
#     certificate; a mismatched key -> "SIGHUP: TLS files refused", the old certificate served;
#   - the documents themselves: every `/metrics | grep ...` line in them matches the real
#     exposition, every amaters_* metric the Prometheus rules and the Grafana dashboard use is
#     exported, every runbook_url anchor exists, the dashboard is valid JSON, and (where promtool
#     is installed) `promtool check rules` and `promtool test rules` pass.
set -uo pipefail

# grep that reads all of its input (grep -q stops at the first match, and with pipefail the
# writer's SIGPIPE would then fail the pipeline at random).
grep_all() { grep "$@" >/dev/null; }

RUNFILES="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-_main}"
SERVER="$RUNFILES/server/amaters-server"
CTL="$RUNFILES/server/ctl/amaters-ctl"
RUNBOOKS="$RUNFILES/docs/runbooks.md"
TROUBLE="$RUNFILES/docs/troubleshooting-guide.md"
RULES="$RUNFILES/docs/prometheus/amaters-rules.yml"
RULES_TEST="$RUNFILES/docs/prometheus/amaters-rules.test.yml"
DASHBOARD="$RUNFILES/docs/prometheus/grafana-dashboard.json"
ETCDCTL="${ETCDCTL:-/usr/bin/etcdctl}"
PROMTOOL="${PROMTOOL:-$(command -v promtool || true)}"
TMP="${TEST_TMPDIR:-$(mktemp -d)}/rb"
rm -rf "$TMP" && mkdir -p "$TMP"
START=$SECONDS

PIDS=()      # PIDS[i]: pid of node i (1..3), "" when not running
TLS_PID=""

cleanup() {
  local p
  for p in "${PIDS[@]}" "$TLS_PID"; do
    [[ -n "$p" ]] || continue
    kill -CONT "$p" 2>/dev/null
    kill -KILL "$p" 2>/dev/null
  done
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  local log
  for log in "$TMP"/node*.log "$TMP"/tls.log; do
    [[ -f "$log" ]] || continue
    echo "--- last lines of $log:" >&2
    tail -n 25 "$log" >&2
  done
  exit 1
}
pass() { echo "ok: $* ($((SECONDS - START))s)"; }
skip() { echo "skipped: $*"; }

for f in "$SERVER" "$CTL"; do [[ -x "$f" ]] || fail "no executable $f"; done
for f in "$RUNBOOKS" "$TROUBLE" "$RULES" "$RULES_TEST" "$DASHBOARD"; do
  [[ -f "$f" ]] || fail "no $f in the runfiles"
done
command -v curl >/dev/null || fail "curl is needed (tools/setup installs it)"

# --- helpers -------------------------------------------------------------------------------------

# wait_for SECONDS DESCRIPTION CMD...: runs CMD every 0.1 s until it succeeds.
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what: not within $limit s"
    sleep 0.1
  done
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports: node i (1..3) client BASE+10(i-1), peer +1, admin +2; the TLS node BASE+30..32.
# Below the kernel's ephemeral ports (32768 and up on Debian), which outgoing connections of
# tests running alongside can take at any moment.
BASE=""
for ((try = 0; try < 50; try++)); do
  candidate=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
  busy=0
  for ((i = 0; i < 4; i++)); do
    for d in 0 1 2; do
      if port_in_use $((candidate + 10 * i + d)); then busy=1; fi
    done
  done
  if ((busy == 0)); then
    BASE=$candidate
    break
  fi
done
[[ -n "$BASE" ]] || fail "no free port range found in 20000..32000"
client_port() { echo $((BASE + 10 * ($1 - 1))); }
peer_port() { echo $((BASE + 10 * ($1 - 1) + 1)); }
admin_port() { echo $((BASE + 10 * ($1 - 1) + 2)); }
EP() { echo "127.0.0.1:$(client_port "$1")"; }
EPS="$(EP 1),$(EP 2),$(EP 3)"

# http NODE PATH: the body (the way the runbooks call it: curl -s http://ADMIN/PATH).
http() { curl -s -m 3 "http://127.0.0.1:$(admin_port "$1")$2"; }
# http_code NODE PATH: the status code only.
http_code() { curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(admin_port "$1")$2"; }

# min_free_bytes: 1 MiB rather than the 1 GiB default, so that a test machine with little free
# space still accepts writes; RB-005 raises it on purpose. max_consecutive_failures = 80 makes
# the failure timeout 8 s, so that RB-003 can stop a follower for a moment (while 30 writes
# go through) without it being reported failed; slow_replication_threshold_entries = 10 makes RB-003 cheap to trigger.
PEERS_TOML="\"1:127.0.0.1:$(peer_port 1)\", \"2:127.0.0.1:$(peer_port 2)\", \"3:127.0.0.1:$(peer_port 3)\""
write_config() {  # write_config NODE MIN_FREE_BYTES
  cat >"$TMP/node$1.toml" <<EOF
[server]
bind_address = "127.0.0.1:$(client_port "$1")"
data_dir = "$TMP/data/node$1"

[storage]
min_free_bytes = $2

[cluster]
node_id = $1
peers = [$PEERS_TOML]
max_consecutive_failures = 80
slow_replication_threshold_entries = 10

[metrics]
bind_address = "127.0.0.1:$(admin_port "$1")"
EOF
}

start_node() {  # start_node NODE: in the background, log appended to node<N>.log
  "$SERVER" start --config="$TMP/node$1.toml" </dev/null >>"$TMP/node$1.log" 2>&1 &
  PIDS[$1]=$!
}

kill9() {  # kill9 NODE
  kill -KILL "${PIDS[$1]}" 2>/dev/null
  wait "${PIDS[$1]}" 2>/dev/null
  PIDS[$1]=""
}

ready() { [[ "$(http "$1" /readyz)" == '{"ready":true}' ]]; }
has_leader() { http "$1" /status | grep_all '"leader_id":[1-9]'; }

LEADER=""
find_leader() {  # sets LEADER to the node whose /status says it leads
  local i
  for i in 1 2 3; do
    [[ -n "${PIDS[i]:-}" ]] || continue
    if http "$i" /status | grep_all '"role":"leader"'; then
      LEADER=$i
      return 0
    fi
  done
  return 1
}

# count_in TEXT NEEDLE: occurrences of a fixed string.
count_in() { grep -o -F -- "$2" <<<"$1" | wc -l; }

# metric NODE LINE_PREFIX: the value of the first sample line starting with LINE_PREFIX.
metric() { http "$1" /metrics | grep -F -- "$2" | grep -v '^#' | head -n1 | awk '{ print $NF }'; }

others_than() {  # the nodes other than $@, one per line
  local i x skip
  for i in 1 2 3; do
    skip=0
    for x in "$@"; do [[ "$i" == "$x" ]] && skip=1; done
    ((skip)) || echo "$i"
  done
}

# --- a healthy cluster ---------------------------------------------------------------------------

mkdir -p "$TMP/data"
for i in 1 2 3; do
  write_config "$i" 1048576
  "$SERVER" validate-config --config="$TMP/node$i.toml" >"$TMP/validate.out" 2>&1 ||
    fail "validate-config node $i: $(cat "$TMP/validate.out")"
  : >"$TMP/node$i.log"
  start_node "$i"
done
for i in 1 2 3; do wait_for 30 "node $i /readyz" ready "$i"; done
wait_for 10 "a leader" find_leader
pass "3 nodes ready, leader $LEADER"

for i in 1 2 3; do
  body="$(http "$i" /health)"
  [[ "$(http_code "$i" /health)" == 200 ]] || fail "node $i /health code is not 200: $body"
  for want in '"status":"healthy"' "\"node_id\":$i" "\"leader_id\":$LEADER" '"checks":{"storage":"healthy: ok"' \
    '"wal":"healthy: ok' '"disk_space":"healthy: ' '"cluster":"healthy: '; do
    grep -qF -- "$want" <<<"$body" || fail "node $i /health lacks $want: $body"
  done
  [[ "$(http "$i" /healthz)" == '{"alive":true}' ]] || fail "node $i /healthz: $(http "$i" /healthz)"
  [[ "$(http "$i" /alerts)" == '[]' ]] || fail "node $i /alerts is not [] in a healthy start: $(http "$i" /alerts)"
done
grep -qF '"cluster":"healthy: leader; all 2 followers reachable"' <<<"$(http "$LEADER" /health)" ||
  fail "leader /health: $(http "$LEADER" /health)"
status="$(http "$LEADER" /status)"
for want in '"role":"leader"' '"peers":[{"id":' '"lag":' '"health":"healthy"' '"ready":true'; do
  grep -qF -- "$want" <<<"$status" || fail "leader /status lacks $want: $status"
done
"$SERVER" status --config="$TMP/node$LEADER.toml" >"$TMP/status.out" 2>&1 || fail "amaters-server status: $(cat "$TMP/status.out")"
grep -qF '"role":"leader"' "$TMP/status.out" || fail "amaters-server status printed $(cat "$TMP/status.out")"
pass "/health, /healthz, /readyz, /alerts [], /status, amaters-server status"

# amaters-ctl status: one line per endpoint "endpoint, member id, leader id, term, index, db size,
# is leader", exactly one of them the leader.
"$CTL" --endpoints="$EPS" status >"$TMP/ctl.out" 2>&1 || fail "amaters-ctl status: $(cat "$TMP/ctl.out")"
[[ "$(wc -l <"$TMP/ctl.out")" == 3 ]] || fail "amaters-ctl status printed $(cat "$TMP/ctl.out")"
[[ "$(grep -c ', true$' "$TMP/ctl.out")" == 1 ]] || fail "amaters-ctl status: not exactly one leader: $(cat "$TMP/ctl.out")"
grep -q "^$(EP "$LEADER"), $LEADER, $LEADER, [0-9]*, [0-9]*, .*, true$" "$TMP/ctl.out" ||
  fail "amaters-ctl status: no line for leader $LEADER: $(cat "$TMP/ctl.out")"
"$CTL" --endpoints="$EPS" put rb-key rb-value >"$TMP/ctl.out" 2>&1 || fail "put: $(cat "$TMP/ctl.out")"
pass "amaters-ctl status, put"

if [[ -x "$ETCDCTL" ]]; then
  "$ETCDCTL" --endpoints="$EPS" endpoint status -w table >"$TMP/etcdctl.out" 2>&1 ||
    fail "etcdctl endpoint status: $(cat "$TMP/etcdctl.out")"
  grep -q 'IS LEADER' "$TMP/etcdctl.out" || fail "etcdctl endpoint status: no table: $(cat "$TMP/etcdctl.out")"
  # | ENDPOINT | ID | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | ...
  leaders="$(awk -F'|' 'NF > 5 && $6 ~ /true/ { gsub(/ /, "", $2); print $2 }' "$TMP/etcdctl.out")"
  [[ "$leaders" == "$(EP "$LEADER")" ]] || fail "etcdctl endpoint status: leader column: $(cat "$TMP/etcdctl.out")"
  pass "etcdctl endpoint status -w table"
else
  skip "etcdctl endpoint status (no $ETCDCTL)"
fi

# --- RB-001: a follower fails and comes back -----------------------------------------------------

mapfile -t FOLLOWERS < <(others_than "$LEADER")
F=${FOLLOWERS[0]}
O=${FOLLOWERS[1]}
kill9 "$F"
has_alert() { http "$1" /alerts | grep_all -F "\"dedup_key\":\"$2\""; }
wait_for 15 "node_failed:$F on leader $LEADER's /alerts" has_alert "$LEADER" "node_failed:$F"
sleep 1
alerts="$(http "$LEADER" /alerts)"
(($(count_in "$alerts" "\"dedup_key\":\"node_failed:$F\"") == 1)) || fail "node_failed:$F not exactly once: $alerts"
grep -qF "{\"rule\":\"node_failed\",\"severity\":\"critical\",\"dedup_key\":\"node_failed:$F\",\"fired_at\":\"" <<<"$alerts" ||
  fail "/alerts entry format: $alerts"
grep -q "^E .* alert rule=node_failed severity=critical dedup_key=node_failed:$F message=\"node $F failed" "$TMP/node$LEADER.log" ||
  fail "no alert log line for node_failed:$F"
has_alert "$O" "node_failed:$F" && fail "follower $O reported follower $F"
[[ "$(metric "$LEADER" 'amaters_alerts_total{rule="node_failed",severity="critical"}')" == 1 ]] ||
  fail "amaters_alerts_total node_failed: $(http "$LEADER" /metrics | grep alerts_total)"
disconnected() { [[ "$(metric "$LEADER" "amaters_peer_connected{peer=\"$F\"}")" == 0 ]]; }
wait_for 5 "amaters_peer_connected{peer=\"$F\"} 0 on the leader" disconnected
[[ "$(http_code "$LEADER" /health)" == 200 ]] || fail "leader /health is not 200 with one follower down"
grep -qF "\"status\":\"degraded\"" <<<"$(http "$LEADER" /health)" || fail "leader /health not degraded: $(http "$LEADER" /health)"
grep -qF "\"cluster\":\"degraded: leader; followers failed: $F (2 of 3 nodes reachable)\"" <<<"$(http "$LEADER" /health)" ||
  fail "leader /health cluster check: $(http "$LEADER" /health)"
ready "$LEADER" || fail "leader not ready with one follower down"
"$CTL" --endpoints="$(EP "$LEADER")" put rb-key rb-value-2 >"$TMP/ctl.out" 2>&1 || fail "put with 2 of 3: $(cat "$TMP/ctl.out")"
"$CTL" --endpoints="$EPS" status >"$TMP/ctl.out" 2>"$TMP/ctl.err" && fail "amaters-ctl status exited 0 with a node down"
[[ "$(wc -l <"$TMP/ctl.out")" == 2 ]] || fail "amaters-ctl status with a node down printed $(cat "$TMP/ctl.out")"
grep -q "^amaters-ctl: status: UNAVAILABLE: $(EP "$F"): " "$TMP/ctl.err" || fail "amaters-ctl status error line: $(cat "$TMP/ctl.err")"
pass "RB-001 symptoms: node_failed:$F once on the leader, log line, metrics, /health degraded, writes go on"

start_node "$F"
wait_for 20 "node_recovered:$F on the leader" has_alert "$LEADER" "node_recovered:$F"
grep -q "^I .* alert rule=node_recovered severity=info dedup_key=node_recovered:$F " "$TMP/node$LEADER.log" ||
  fail "no alert log line for node_recovered:$F"
healthy() { http "$1" /health | grep_all -F '"status":"healthy"'; }
wait_for 20 "leader /health healthy again" healthy "$LEADER"
wait_for 20 "node $F ready again" ready "$F"
# The leader's own connection to the node comes back after its reconnect backoff (<= 1 s).
reconnected() { [[ "$(metric "$LEADER" "amaters_peer_connected{peer=\"$F\"}")" == 1 ]]; }
wait_for 10 "amaters_peer_connected{peer=\"$F\"} 1 on the leader" reconnected
(($(count_in "$(http "$LEADER" /alerts)" "\"dedup_key\":\"node_failed:$F\"") == 1)) || fail "node_failed:$F repeated: $(http "$LEADER" /alerts)"
pass "RB-001 verification: node_recovered:$F, leader healthy, node $F ready"

# --- RB-003: slow replication --------------------------------------------------------------------

find_leader || fail "no leader after RB-001"
mapfile -t FOLLOWERS < <(others_than "$LEADER")
S=${FOLLOWERS[1]}
kill -STOP "${PIDS[S]}"
stopped_at=$SECONDS
# Three writers putting 10 keys each in a row (etcdctl starts in milliseconds; 30 amaters-ctl
# processes at once take seconds to start under the sanitizers), so that the lag builds well
# inside the failure timeout even on a loaded machine. Each put done appends a line to
# rb3.progress, so that a failure says how far the writes got.
: >"$TMP/rb3.progress"
writers=()
for first in 1 11 21; do
  (
    for k in $(seq "$first" $((first + 9))); do
      if [[ -x "$ETCDCTL" ]]; then
        "$ETCDCTL" --endpoints="$(EP "$LEADER")" --command-timeout=10s put "rb3-$k" "v$k" >/dev/null 2>&1 || exit 1
      else
        "$CTL" --endpoints="$(EP "$LEADER")" --timeout=10s put "rb3-$k" "v$k" >/dev/null 2>&1 || exit 1
      fi
      echo "$k" >>"$TMP/rb3.progress"
    done
  ) &
  writers+=($!)
done
lagging() { has_alert "$LEADER" "slow_replication:$S"; }
deadline=$((SECONDS + 10))  # the 30 puts take a second or two: lag 10 shows before the 8 s failure timeout
until lagging; do
  if ((SECONDS >= deadline)); then
    kill -CONT "${PIDS[S]}"
    fail "no slow_replication:$S on the leader's /alerts within 10 s of SIGSTOP ($(wc -l <"$TMP/rb3.progress") puts acknowledged; /alerts: $(http "$LEADER" /alerts))"
  fi
  sleep 0.05
done
alert_after=$((SECONDS - stopped_at))
# The gauge is refreshed every 250 ms, the alert fires at once: read it until it catches up.
lag=0
for _ in $(seq 1 40); do
  lag="$(metric "$LEADER" "amaters_peer_replication_lag_entries{peer=\"$S\"}")"
  lag=${lag:-0}
  ((lag >= 10)) && break
  sleep 0.1
done
kill -CONT "${PIDS[S]}"
for w in "${writers[@]}"; do wait "$w" || fail "a put failed while node $S was stopped"; done
((lag >= 10)) || fail "amaters_peer_replication_lag_entries{peer=\"$S\"} was $lag, want >= 10"
grep -q "^W .* alert rule=slow_replication severity=warning dedup_key=slow_replication:$S message=\"follower $S is " "$TMP/node$LEADER.log" ||
  fail "no alert log line for slow_replication:$S"
caught_up() { [[ "$(metric "$LEADER" "amaters_peer_replication_lag_entries{peer=\"$S\"}")" == 0 ]]; }
wait_for 20 "lag of node $S back to 0" caught_up
wait_for 20 "node $S ready" ready "$S"
pass "RB-003: slow_replication:$S at lag $lag ${alert_after}s after SIGSTOP, back to 0 after SIGCONT"

# --- RB-005 and SIGHUP: disk nearly full ---------------------------------------------------------

D=${FOLLOWERS[0]}
kill -HUP "${PIDS[D]}"
reloaded() { grep -q "$2" "$TMP/node$1.log"; }
wait_for 5 "SIGHUP log line" reloaded "$D" "SIGHUP: configuration reloaded applied=- ignored_need_restart=-"
write_config "$D" 4611686018427387904  # 4 EiB: more than any disk, so free < min_free_bytes/4
kill -HUP "${PIDS[D]}"
wait_for 5 "SIGHUP applied min_free_bytes" reloaded "$D" "SIGHUP: configuration reloaded applied=storage.min_free_bytes"
refusing() { [[ "$(metric "$D" amaters_accepting_writes)" == 0 ]]; }
wait_for 5 "amaters_accepting_writes 0" refusing
wait_for 5 "'refusing client writes' log line" reloaded "$D" \
  '^E .* refusing client writes reason="disk nearly full: [0-9]* bytes free, below min_free_bytes/4 (1152921504606846976); writes refused"'
sleep 0.3  # the gate closes right after that line, in the same round of the server's main loop
"$CTL" --endpoints="$(EP "$D")" put rb5 v >"$TMP/ctl.out" 2>"$TMP/ctl.err" && fail "a put through node $D succeeded with the disk 'full'"
grep -q '^amaters-ctl: put: RESOURCE_EXHAUSTED: etcdserver: disk nearly full: [0-9]* bytes free, below min_free_bytes/4' "$TMP/ctl.err" ||
  fail "put error: $(cat "$TMP/ctl.err")"
[[ "$(http_code "$D" /health)" == 503 ]] || fail "/health code is not 503 with the disk 'full'"
body="$(http "$D" /health)"
for want in '"status":"unhealthy"' '"disk_space":"unhealthy: ' '"writes_refused":"disk nearly full: '; do
  grep -qF -- "$want" <<<"$body" || fail "/health lacks $want: $body"
done
[[ "$(http "$D" /readyz)" == '{"ready":false}' ]] || fail "/readyz: $(http "$D" /readyz)"
http "$D" /metrics | grep_all '^amaters_health_state{state="unhealthy"} 1$' || fail "amaters_health_state unhealthy is not 1"
http "$D" /metrics | grep_all '^amaters_disk_free_bytes [0-9]' || fail "no amaters_disk_free_bytes sample"
"$CTL" --endpoints="$(EP "$D")" get rb-key >"$TMP/ctl.out" 2>&1 || fail "reads must still be served: $(cat "$TMP/ctl.out")"
"$ETCDCTL" --endpoints="$(EP "$D")" alarm list >"$TMP/alarm.out" 2>&1 || fail "etcdctl alarm list: $(cat "$TMP/alarm.out")"
grep -qE '^memberID:[0-9]+ alarm:NOSPACE *$' "$TMP/alarm.out" || fail "alarm list lacks NOSPACE: $(cat "$TMP/alarm.out")"
pass "RB-005 symptoms: RESOURCE_EXHAUSTED disk nearly full, /health 503 unhealthy, amaters_accepting_writes 0"

write_config "$D" 1048576
kill -HUP "${PIDS[D]}"
accepting() { [[ "$(metric "$D" amaters_accepting_writes)" == 1 ]]; }
wait_for 5 "amaters_accepting_writes back to 1" accepting
wait_for 5 "'accepting client writes again' log line" reloaded "$D" '^I .* accepting client writes again'
sleep 0.3  # the gate opens right after that line, in the same round of the server's main loop
"$ETCDCTL" --endpoints="$(EP "$D")" alarm list >"$TMP/alarm.out" 2>&1 || fail "etcdctl alarm list: $(cat "$TMP/alarm.out")"
[[ ! -s "$TMP/alarm.out" ]] || fail "NOSPACE still listed after recovery: $(cat "$TMP/alarm.out")"
sleep 0.3
wait_for 5 "node $D healthy" healthy "$D"
"$CTL" --endpoints="$(EP "$D")" put rb5 v >"$TMP/ctl.out" 2>&1 || fail "put after the fix: $(cat "$TMP/ctl.out")"
pass "RB-005 verification and SIGHUP: accepting writes again"

# --- RB-002: quorum lost -------------------------------------------------------------------------

find_leader || fail "no leader before RB-002"
mapfile -t FOLLOWERS < <(others_than "$LEADER")
Q=${FOLLOWERS[0]}
for i in $(others_than "$Q"); do kill9 "$i"; done
wait_for 20 "quorum_lost on the survivor $Q" has_alert "$Q" quorum_lost
grep -q '^E .* alert rule=quorum_lost severity=critical dedup_key=quorum_lost message="quorum lost: 1 of 3 nodes reachable, 2 needed' "$TMP/node$Q.log" ||
  fail "no alert log line for quorum_lost"
[[ "$(http_code "$Q" /readyz)" == 503 && "$(http "$Q" /readyz)" == '{"ready":false}' ]] || fail "survivor /readyz: $(http "$Q" /readyz)"
grep -qF '"cluster":"degraded: quorum lost: fewer than 2 of 3 nodes reachable"' <<<"$(http "$Q" /health)" ||
  fail "survivor /health: $(http "$Q" /health)"
http "$Q" /metrics | grep_all '^amaters_raft_has_leader 0$' || fail "amaters_raft_has_leader is not 0"
http "$Q" /metrics | grep_all '^amaters_alerts_total{rule="quorum_lost",severity="critical"} 1$' || fail "amaters_alerts_total quorum_lost is not 1"
t0=$SECONDS
"$CTL" --endpoints="$(EP "$Q")" put rb2 lost >"$TMP/ctl.out" 2>"$TMP/ctl.err" && fail "a put succeeded without a quorum"
grep -q '^amaters-ctl: put: UNAVAILABLE: etcdserver: no quorum: fewer than 2 of 3 members reachable (alert quorum_lost)$' "$TMP/ctl.err" ||
  fail "put error without a quorum: $(cat "$TMP/ctl.err")"
((SECONDS - t0 <= 2)) || fail "the put without a quorum was not refused at once"
if [[ -x "$ETCDCTL" ]]; then
  "$ETCDCTL" --endpoints="$(EP "$Q")" endpoint status -w table >"$TMP/etcdctl.out" 2>&1
  grep -q 'etcdserver: no leader' "$TMP/etcdctl.out" || fail "etcdctl endpoint status ERRORS column: $(cat "$TMP/etcdctl.out")"
fi
pass "RB-002 symptoms on survivor $Q: quorum_lost, /readyz 503, UNAVAILABLE no quorum at once"

for i in $(others_than "$Q"); do start_node "$i"; done
wait_for 30 "survivor $Q ready again" ready "$Q"
for i in 1 2 3; do wait_for 30 "node $i ready" ready "$i"; done
"$CTL" --endpoints="$(EP "$Q")" put rb2 back >"$TMP/ctl.out" 2>&1 || fail "put after restoring: $(cat "$TMP/ctl.out")"
"$CTL" --endpoints="$EPS" status >"$TMP/ctl.out" 2>&1 || fail "amaters-ctl status after restoring: $(cat "$TMP/ctl.out")"
[[ "$(grep -c ', true$' "$TMP/ctl.out")" == 1 ]] || fail "not one leader after restoring: $(cat "$TMP/ctl.out")"
pass "RB-002 verification: every node ready, writes accepted, one leader"

# --- RB-006: WAL corruption ----------------------------------------------------------------------

find_leader || fail "no leader before RB-006"
mapfile -t FOLLOWERS < <(others_than "$LEADER")
W=${FOLLOWERS[0]}
kill -TERM "${PIDS[W]}"
wait "${PIDS[W]}"
PIDS[W]=""
seg="$TMP/data/node$W/wal/0000000000000000.wal"
(($(stat -c %s "$seg") > 300)) || fail "$seg is too short to corrupt in the middle"
# Offset 104: the payload of the first entry record (32-byte segment header, 48-byte hard state
# record, 24-byte record header); valid records follow it, so this is corruption, not a torn tail.
printf '\xff' | dd of="$seg" bs=1 seek=104 conv=notrunc status=none
before="$(md5sum "$seg")"
timeout 30 "$SERVER" start --config="$TMP/node$W.toml" </dev/null >"$TMP/corrupt.out" 2>&1
rc=$?
[[ $rc == 1 ]] || fail "start on a corrupt WAL: exit status $rc, want 1: $(cat "$TMP/corrupt.out")"
grep -q "^amaters-server: WAL in $TMP/data/node$W/wal: WAL corruption in 0000000000000000.wal at offset [0-9]*: .*; refusing to start" "$TMP/corrupt.out" ||
  fail "start on a corrupt WAL: $(cat "$TMP/corrupt.out")"
[[ "$(md5sum "$seg")" == "$before" ]] || fail "the refused start changed $seg"
# The precondition the runbook asks for: the leader's /status shows every other follower at lag 0.
other=${FOLLOWERS[1]}
in_sync() { http "$LEADER" /status | grep_all -F "{\"id\":$other,\"match\":" && http "$LEADER" /status | grep_all "{\"id\":$other,[^}]*\"connected\":true,\"lag\":0}"; }
wait_for 10 "follower $other at lag 0 on the leader" in_sync
mv "$TMP/data/node$W" "$TMP/data/node$W.corrupt-saved"
start_node "$W"
wait_for 30 "node $W (empty data directory) knows the leader" has_leader "$W"
# The runbook's step 3: one write makes the leader notice the empty log (until then it still
# counts the match index node W acknowledged before it was emptied).
"$CTL" --endpoints="$EPS" put rb6-marker rebuilt >"$TMP/ctl.out" 2>&1 || fail "put rb6-marker: $(cat "$TMP/ctl.out")"
commit="$(http "$LEADER" /status | sed 's/.*"commit_index":\([0-9]*\).*/\1/')"
applied_enough() {
  local a
  a="$(http "$W" /status | sed 's/.*"applied_index":\([0-9]*\).*/\1/')"
  ((a >= commit))
}
wait_for 30 "node $W applied index >= $commit" applied_enough
wait_for 10 "node $W ready" ready "$W"
"$CTL" --endpoints="$(EP "$W")" get rb6-marker >"$TMP/ctl.out" 2>&1 || fail "get rb6-marker: $(cat "$TMP/ctl.out")"
[[ "$(cat "$TMP/ctl.out")" == $'rb6-marker\nrebuilt' ]] || fail "the rebuilt node serves '$(cat "$TMP/ctl.out")' for rb6-marker"
"$CTL" --endpoints="$(EP "$W")" get rb-key >"$TMP/ctl.out" 2>&1 || fail "get through the rebuilt node: $(cat "$TMP/ctl.out")"
[[ "$(cat "$TMP/ctl.out")" == $'rb-key\nrb-value-2' ]] || fail "the rebuilt node serves '$(cat "$TMP/ctl.out")'"
"$CTL" --endpoints="$(EP "$W")" get rb3-30 >"$TMP/ctl.out" 2>&1 || fail "get rb3-30: $(cat "$TMP/ctl.out")"
[[ "$(cat "$TMP/ctl.out")" == $'rb3-30\nv30' ]] || fail "the rebuilt node serves '$(cat "$TMP/ctl.out")' for rb3-30"
pass "RB-006: refused start names file and offset, changes nothing; wiped node $W caught up to index $commit"

# --- the documents' grep commands against the real exposition ------------------------------------

find_leader || fail "no leader for the metrics checks"
: >"$TMP/metrics.txt"
for i in 1 2 3; do http "$i" /metrics >>"$TMP/metrics.txt"; done
grep -q '^amaters_peer_replication_lag_entries{peer=' "$TMP/metrics.txt" || fail "no lag series in the exposition"
n=0
while IFS= read -r line; do
  cmd="${line#*/metrics | }"
  if ! (eval "$cmd") <"$TMP/metrics.txt" >/dev/null 2>&1; then
    fail "this command from the documents matches nothing in the real /metrics output: $line"
  fi
  n=$((n + 1))
done < <(grep -h -o 'curl -s [^ ]*/metrics \\\?| grep .*' "$RUNBOOKS" "$TROUBLE" | sed 's/\\|/|/g; s/  *#.*$//; s/`.*$//')
((n >= 5)) || fail "only $n '/metrics | grep' commands found in the documents"
pass "$n '/metrics | grep ...' commands from runbooks.md and troubleshooting-guide.md match the exposition"

# Every amaters_* name used by the Prometheus rules and the Grafana dashboard is exported.
for name in $(grep -h -o 'amaters_[a-z_]*' "$RULES" "$DASHBOARD" | sort -u); do
  grep -q "^$name[{ ]" "$TMP/metrics.txt" || fail "$name (used in docs/prometheus) is not in the exposition"
done
pass "every metric in amaters-rules.yml and grafana-dashboard.json is exported"

# Every runbook_url of the rules names an anchor (<a id="...">) of runbooks.md or
# troubleshooting-guide.md.
for url in $(grep -o 'runbook_url: *"[^"]*"' "$RULES" | sed 's/.*"\(.*\)"/\1/' | sort -u); do
  case "${url%%#*}" in
    docs/runbooks.md | docs/troubleshooting-guide.md) ;;
    *) fail "runbook_url $url: not docs/runbooks.md or docs/troubleshooting-guide.md" ;;
  esac
  grep -q "<a id=\"${url#*#}\"></a>" "$RUNFILES/${url%%#*}" || fail "runbook_url $url: no such anchor"
done
pass "runbook_url anchors exist"

if command -v python3 >/dev/null; then
  python3 -m json.tool "$DASHBOARD" >/dev/null 2>"$TMP/json.err" || fail "grafana-dashboard.json: $(cat "$TMP/json.err")"
  pass "grafana-dashboard.json is valid JSON"
else
  skip "dashboard JSON check (no python3)"
fi
if [[ -n "$PROMTOOL" && -x "$PROMTOOL" ]]; then
  "$PROMTOOL" check rules "$RULES" >"$TMP/promtool.out" 2>&1 || fail "promtool check rules: $(cat "$TMP/promtool.out")"
  (cd "$(dirname "$RULES_TEST")" && "$PROMTOOL" test rules "$(basename "$RULES_TEST")") >"$TMP/promtool.out" 2>&1 ||
    fail "promtool test rules: $(cat "$TMP/promtool.out")"
  pass "promtool check rules, promtool test rules"
  if command -v python3 >/dev/null; then
    # Every query of the dashboard parses: as recording rules, Grafana's variables replaced.
    python3 - "$DASHBOARD" >"$TMP/dashboard-rules.yml" <<'PY' || fail "cannot read the dashboard's queries"
import json, sys
print("groups:\n  - name: dashboard\n    rules:")
n = 0
for panel in json.load(open(sys.argv[1]))["panels"]:
    for t in panel.get("targets", []):
        e = t["expr"]
        for var, value in (("$__rate_interval", "1m"), ("$__range", "1h"), ("$job", "amaters"), ("$instance", ".*")):
            e = e.replace(var, value)
        n += 1
        print("      - record: dashboard_query_%d\n        expr: %s" % (n, json.dumps(e)))
PY
    "$PROMTOOL" check rules "$TMP/dashboard-rules.yml" >"$TMP/promtool.out" 2>&1 ||
      fail "a Grafana dashboard query does not parse: $(cat "$TMP/promtool.out")"
    pass "promtool parses every query of grafana-dashboard.json"
  fi
else
  skip "promtool checks (promtool is not installed; see docs/prometheus/README.md)"
fi

# --- RB-004: certificate rotation (one TLS node) -------------------------------------------------

for i in 1 2 3; do
  [[ -n "${PIDS[i]}" ]] && kill -TERM "${PIDS[i]}"
done
for i in 1 2 3; do
  [[ -n "${PIDS[i]}" ]] && wait "${PIDS[i]}"
  PIDS[i]=""
done

if ! command -v openssl >/dev/null; then
  skip "RB-004 (no openssl command)"
  echo "PASS ($((SECONDS - START))s)"
  exit 0
fi
T="$TMP/tls"
mkdir -p "$T"
cat >"$T/leaf.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1
EOF
ossl() { openssl "$@" >>"$T/openssl.log" 2>&1 || fail "openssl $*: $(tail -5 "$T/openssl.log")"; }
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ca.key"
ossl req -new -x509 -key "$T/ca.key" -sha256 -days 3650 -subj "/CN=amaters test CA" -out "$T/ca.crt"
issue() {  # issue NAME DAYS: NAME.key and NAME.crt signed by the CA
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key"
  ossl req -new -key "$T/$1.key" -subj "/CN=amaters-node" -out "$T/$1.csr"
  ossl x509 -req -in "$T/$1.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -sha256 -days "$2" \
    -extfile "$T/leaf.ext" -out "$T/$1.crt"
}
issue node 20
TLS_CLIENT="127.0.0.1:$((BASE + 30))"
TLS_ADMIN=$((BASE + 32))
cat >"$T/node.toml" <<EOF
[server]
bind_address = "$TLS_CLIENT"
data_dir = "$T/data"

[storage]
min_free_bytes = 1048576

[network]
tls_enabled = true
tls_cert = "$T/node.crt"
tls_key = "$T/node.key"
tls_ca = "$T/ca.crt"

[metrics]
bind_address = "127.0.0.1:$TLS_ADMIN"
EOF
: >"$TMP/tls.log"
"$SERVER" start --config="$T/node.toml" </dev/null >>"$TMP/tls.log" 2>&1 &
TLS_PID=$!
tls_http() { curl -s -m 3 "http://127.0.0.1:$TLS_ADMIN$1"; }
tls_ready() { [[ "$(tls_http /readyz)" == '{"ready":true}' ]]; }
wait_for 30 "TLS node ready" tls_ready
tls_alert() { tls_http /alerts | grep_all -F "$1"; }
wait_for 10 "certificate_expiring warning" tls_alert \
  "{\"rule\":\"certificate_expiring\",\"severity\":\"warning\",\"dedup_key\":\"certificate_expiring:$T/node.crt\""
tls_alert "expires in 19 days; rotate it (RB-004)" || fail "certificate_expiring message: $(tls_http /alerts)"
not_after() { date -u -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%s; }
expiry_is() { [[ "$(curl -s -m 3 "http://127.0.0.1:$TLS_ADMIN/metrics" | grep '^amaters_tls_certificate_expiry_timestamp_seconds ' | awk '{ print $2 }')" == "$1" ]]; }
expiry_is "$(not_after "$T/node.crt")" || fail "amaters_tls_certificate_expiry_timestamp_seconds is not the notAfter of node.crt"
served_serial() {
  openssl s_client -connect "$TLS_CLIENT" -CAfile "$T/ca.crt" </dev/null 2>/dev/null | openssl x509 -noout -serial
}
serial_of() { openssl x509 -noout -serial -in "$1"; }
serves() { [[ "$(served_serial)" == "$(serial_of "$1")" ]]; }
wait_for 5 "the served certificate is node.crt" serves "$T/node.crt"
"$CTL" --endpoints="$TLS_CLIENT" --cacert="$T/ca.crt" put tls-k tls-v >"$TMP/ctl.out" 2>&1 || fail "TLS put: $(cat "$TMP/ctl.out")"
pass "RB-004 trigger: certificate_expiring warning at 19 days, expiry gauge, served serial"

# Rotation as the runbook does it: new files under temporary names, renamed into place, SIGHUP.
issue next 5
cp "$T/node.crt" "$T/old.crt"
mv "$T/next.key" "$T/node.key" && mv "$T/next.crt" "$T/node.crt"
kill -HUP "$TLS_PID"
tls_log() { grep -q "$1" "$TMP/tls.log"; }
wait_for 5 "TLS reload log line" tls_log 'SIGHUP: TLS certificate reloaded; new connections use it, open ones are kept subject="CN=amaters-node" not_after='
wait_for 10 "new connections get the new certificate" serves "$T/node.crt"
wait_for 5 "critical certificate_expiring" tls_alert \
  "{\"rule\":\"certificate_expiring\",\"severity\":\"critical\",\"dedup_key\":\"certificate_expiring:$T/node.crt\""
wait_for 5 "the expiry gauge follows the new certificate" expiry_is "$(not_after "$T/node.crt")"
"$CTL" --endpoints="$TLS_CLIENT" --cacert="$T/ca.crt" put tls-k tls-v2 >"$TMP/ctl.out" 2>&1 || fail "TLS put after rotation: $(cat "$TMP/ctl.out")"
pass "RB-004 rotation: reloaded on SIGHUP, new serial served, critical at 4 days"

# A half-done rotation (new certificate, old key) is refused; the previous certificate stays.
issue broken 365
cp "$T/node.crt" "$T/served.crt"
mv "$T/broken.crt" "$T/node.crt"
kill -HUP "$TLS_PID"
wait_for 5 "TLS refusal log line" tls_log 'SIGHUP: TLS files refused; the previous certificate stays in service error=".*not the private key of the certificate'
sleep 2
serves "$T/served.crt" || fail "after a refused SIGHUP the served certificate changed"
# Completing the pair and reloading again installs it; 365 days ends the alert (no new firing).
mv "$T/broken.key" "$T/node.key"
kill -HUP "$TLS_PID"
wait_for 10 "the completed rotation is served" serves "$T/node.crt"
wait_for 5 "the expiry gauge shows 365 days" expiry_is "$(not_after "$T/node.crt")"
(($(count_in "$(tls_http /alerts)" '"rule":"certificate_expiring"') == 2)) || fail "unexpected firings: $(tls_http /alerts)"
pass "RB-004 refusal of a mismatched pair, then rotation to a 365-day certificate"

kill -TERM "$TLS_PID"
wait "$TLS_PID"
TLS_PID=""
grep -q "stopped exit_code=0" "$TMP/tls.log" || fail "the TLS node did not stop cleanly"
echo "PASS ($((SECONDS - START))s)"
