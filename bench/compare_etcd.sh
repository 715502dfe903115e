#!/usr/bin/env bash
# Side by side with etcd: a three-member etcd 3.4 cluster and a three-node amaters cluster on
# 127.0.0.1, one after the other, each driven by etcd's own benchmark tool with the same
# workloads; prints one table and appends the run to bench/RESULTS.md.
#
#   bench/compare_etcd.sh [--quick] [FLAGS]        (see --help and docs/benchmarks.md)
set -uo pipefail

readonly PROG="compare_etcd"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO

usage() {
  cat <<'EOF'
usage: bench/compare_etcd.sh [FLAGS]

Runs a three-member etcd 3.4 cluster (Debian's etcd-server, /usr/bin/etcd) and then a three-node
amaters cluster (amaters-server built with `./bazelw build -c opt`), never both at once, on
127.0.0.1 with their data on disk and default durability (etcd: fsync of its WAL before a write
is acknowledged; amaters: [storage.wal] sync_mode = "always", the default, not overridden), and
drives each with etcd's own benchmark tool (tools/benchmark of etcd 3.4, built by
bench/etcd_benchmark_setup.sh). Workloads, in this order, key 8 B and value 256 B:

  put-1       put,   1 client,    1 connection   --put1-total requests
  put-100     put,   100 clients, 10 connections  --put100-total requests
  put-1000    put,   1000 clients, 100 connections --put1000-total requests
  range-100   linearizable range of one pre-written key, 100 clients, 10 connections
                                                   --range-total requests
  range-1     linearizable range of the same key, 1 client, 1 connection
                                                   --put1-total requests
  srange-1    serializable range of the same key, 1 client, 1 connection
                                                   --put1-total requests
  srange-100  serializable range of the same key, 100 clients, 10 connections
                                                   --range-total requests
  watch       100 watchers (10 streams of 10) on 10 keys while 10 clients put --watch-puts
              times to those keys: req/s is watch events delivered per second (each put is
              seen by 10 watchers); its p50/p99 time the client's receive loop only
  lease-keepalive  keep-alives of one lease, 100 clients, 10 connections
                                                   --range-total requests

The two serializable workloads are floors: one client round trip through gRPC to one member,
no replication and no disk, so they bound what any write or linearizable read can reach on the
machine. range-1 adds one round trip to the followers (ReadIndex) and no disk: a put from one
client also needs that round and an fdatasync.

Puts use --sequential-keys over a key space of 100000 keys. By default every request goes to
the leader (found with `etcdctl endpoint status`, checked again after every workload); with
--endpoints=all the benchmark spreads its connections over the three members. Either way both
systems get the same.

Prints one table (requests/s, p50 and p99 latency for each system, amaters/etcd ratios), the
leader's WAL fsyncs per workload, and the peak RSS (VmHWM) of every node, and appends all of it
with date, machine, commit, command and load average to bench/RESULTS.md.

Needs: Debian 12 (bookworm) packages, installed with apt-get (sudo when not root) if missing —
golang-go, etcd-server, etcd-client, golang-etcd-server-dev and the golang-*-dev packages the
benchmark tool imports; one download of etcd's source tarball from the Debian archive the first
time (cached in ~/.cache/amaters-bench).

Flags:
  --quick                 smoke run: 300 / 3000 / 5000 / 3000 / 300 requests; not recorded unless
                          --record is given
  --put1-total=N          requests of put-1, range-1 and srange-1 (default 10000)
  --put100-total=N        requests of put-100 (default 100000)
  --put1000-total=N       requests of put-1000 (default 200000)
  --range-total=N         requests of range-100, srange-100 and lease-keepalive (default 100000)
  --watch-puts=N          puts of the watch workload (default 10000)
  --systems=LIST          etcd,amaters (default both); one alone for a partial table
  --workloads=LIST        run only these workloads (comma-separated names from the list above,
                          in that order); the tables show only them
  --endpoints=leader|all  where the benchmark connects (default leader)
  --base-port=P           ports P..P+22 on 127.0.0.1 (default 23790): member i uses
                          P+10*(i-1) for clients, +1 for peers, +2 for amaters' admin HTTP
  --work-dir=DIR          parent of the run's data directory (default ~/.cache/amaters-bench/runs;
                          must not be tmpfs: the point is data on disk)
  --keep                  keep the run's directory (data, configs, logs, raw outputs)
  --amaters-bin=PATH      use this amaters-server instead of building one
  --benchmark-bin=PATH    use this etcd benchmark binary instead of bench/etcd_benchmark_setup.sh
  --cache-dir=DIR         cache of the benchmark build (default ~/.cache/amaters-bench)
  --results=FILE          where the run is recorded (default bench/RESULTS.md of this checkout)
  --record / --no-record  append the run to --results or not (default: record unless --quick)
  --timeout=SEC           bound on one workload (default 900); a timed-out cell shows "timeout"
  --help                  this text

Exit status 0 when every workload ran on every chosen system without request errors; 1 when a
cluster did not start, a workload failed or timed out, or requests failed (the table is still
printed and recorded, with the failures named); 2 for a usage error.
EOF
}

die_usage() {
  echo "$PROG: $*" >&2
  echo "$PROG: see --help" >&2
  exit 2
}
log() { echo "$PROG: $*" >&2; }
die() {
  echo "$PROG: error: $*" >&2
  exit 1
}

# --- flags -------------------------------------------------------------------------------------

QUICK=0
PUT1_TOTAL=10000
PUT100_TOTAL=100000
PUT1000_TOTAL=200000
RANGE_TOTAL=100000
WATCH_PUTS=10000
SYSTEMS="etcd,amaters"
WORKLOAD_LIST=""
ENDPOINTS_MODE="leader"
BASE_PORT=23790
WORK_PARENT=""
KEEP=0
AMATERS_BIN=""
BENCH_BIN=""
# HOME may be unset (e.g. under `bazel test`): the passwd entry, then /tmp.
HOME_DIR="${HOME:-$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6)}"
CACHE_DIR="${XDG_CACHE_HOME:-${HOME_DIR:-/tmp}/.cache}/amaters-bench"
RESULTS="$REPO/bench/RESULTS.md"
RECORD=""
WORKLOAD_TIMEOUT=900
declare -A SET_TOTAL=()
readonly ORIGINAL_ARGS=("$@")

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

for arg in "$@"; do
  name="${arg%%=*}"
  value=""
  [[ "$arg" == *=* ]] && value="${arg#*=}"
  case "$name" in
    --help | -h) usage; exit 0 ;;
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    --record) RECORD=1 ;;
    --no-record) RECORD=0 ;;
    --put1-total | --put100-total | --put1000-total | --range-total | --watch-puts)
      is_uint "$value" && ((10#$value > 0)) || die_usage "$name takes a request count > 0"
      SET_TOTAL[$name]=$((10#$value))
      ;;
    --systems) SYSTEMS="$value" ;;
    --workloads) WORKLOAD_LIST="$value" ;;
    --endpoints) ENDPOINTS_MODE="$value" ;;
    --base-port) BASE_PORT="$value" ;;
    --work-dir) WORK_PARENT="$value" ;;
    --amaters-bin) AMATERS_BIN="$value" ;;
    --benchmark-bin) BENCH_BIN="$value" ;;
    --cache-dir) CACHE_DIR="$value" ;;
    --results) RESULTS="$value" ;;
    --timeout) WORKLOAD_TIMEOUT="$value" ;;
    *) die_usage "unknown flag $arg" ;;
  esac
  case "$name" in
    --systems | --workloads | --endpoints | --base-port | --work-dir | --amaters-bin | --benchmark-bin | --cache-dir | --results | --timeout)
      [[ -n "$value" ]] || die_usage "$name needs a value ($name=...)"
      ;;
  esac
done

if ((QUICK)); then
  PUT1_TOTAL=300 PUT100_TOTAL=3000 PUT1000_TOTAL=5000 RANGE_TOTAL=3000 WATCH_PUTS=300
fi
PUT1_TOTAL="${SET_TOTAL[--put1-total]:-$PUT1_TOTAL}"
PUT100_TOTAL="${SET_TOTAL[--put100-total]:-$PUT100_TOTAL}"
PUT1000_TOTAL="${SET_TOTAL[--put1000-total]:-$PUT1000_TOTAL}"
RANGE_TOTAL="${SET_TOTAL[--range-total]:-$RANGE_TOTAL}"
WATCH_PUTS="${SET_TOTAL[--watch-puts]:-$WATCH_PUTS}"
[[ -n "$RECORD" ]] || RECORD=$((QUICK ? 0 : 1))

RUN_ETCD=0
RUN_AMATERS=0
IFS=',' read -r -a sys_list <<<"$SYSTEMS"
for s in "${sys_list[@]}"; do
  case "$s" in
    etcd) RUN_ETCD=1 ;;
    amaters) RUN_AMATERS=1 ;;
    *) die_usage "--systems: unknown system \"$s\" (etcd, amaters)" ;;
  esac
done
((RUN_ETCD || RUN_AMATERS)) || die_usage "--systems names no system"
case "$ENDPOINTS_MODE" in leader | all) ;; *) die_usage "--endpoints must be leader or all" ;; esac
is_uint "$BASE_PORT" && ((10#$BASE_PORT >= 1024 && 10#$BASE_PORT + 22 <= 65535)) ||
  die_usage "--base-port must be 1024..65513"
BASE_PORT=$((10#$BASE_PORT))
is_uint "$WORKLOAD_TIMEOUT" && ((10#$WORKLOAD_TIMEOUT > 0)) || die_usage "--timeout takes seconds > 0"

# --- workloads ---------------------------------------------------------------------------------

readonly KEY_SIZE=8
readonly VALUE_SIZE=256
readonly KEY_SPACE=100000
readonly RANGE_KEY="rangekey" # 8 bytes, written once before range-100
readonly ALL_WORKLOADS=(put-1 put-100 put-1000 range-100 range-1 srange-1 srange-100 watch
  lease-keepalive)
WORKLOADS=("${ALL_WORKLOADS[@]}")
if [[ -n "$WORKLOAD_LIST" ]]; then
  WORKLOADS=()
  IFS=',' read -r -a wanted <<<"$WORKLOAD_LIST"
  for w in "${wanted[@]}"; do
    [[ " ${ALL_WORKLOADS[*]} " == *" $w "* ]] || die_usage "--workloads: unknown workload \"$w\""
  done
  for w in "${ALL_WORKLOADS[@]}"; do
    [[ ",$WORKLOAD_LIST," == *",$w,"* ]] && WORKLOADS+=("$w")
  done
fi
readonly WORKLOADS
declare -A W_DESC=(
  [put-1]="put, 1 client / 1 conn"
  [put-100]="put, 100 clients / 10 conns"
  [put-1000]="put, 1000 clients / 100 conns"
  [range-100]="range (linearizable), 100 clients / 10 conns"
  [range-1]="range (linearizable), 1 client / 1 conn"
  [srange-1]="range (serializable), 1 client / 1 conn"
  [srange-100]="range (serializable), 100 clients / 10 conns"
  [watch]="watch events delivered, 100 watchers on 10 keys / 10 putting clients"
  [lease-keepalive]="lease keep-alive, 100 clients / 10 conns"
)
declare -A W_ARGS=(
  [put-1]="--clients=1 --conns=1 put --total=$PUT1_TOTAL"
  [put-100]="--clients=100 --conns=10 put --total=$PUT100_TOTAL"
  [put-1000]="--clients=1000 --conns=100 put --total=$PUT1000_TOTAL"
  [range-100]="--clients=100 --conns=10 range $RANGE_KEY --consistency=l --total=$RANGE_TOTAL"
  [range-1]="--clients=1 --conns=1 range $RANGE_KEY --consistency=l --total=$PUT1_TOTAL"
  [srange-1]="--clients=1 --conns=1 range $RANGE_KEY --consistency=s --total=$PUT1_TOTAL"
  [srange-100]="--clients=100 --conns=10 range $RANGE_KEY --consistency=s --total=$RANGE_TOTAL"
  [watch]="--clients=10 --conns=10 watch --streams=10 --watch-per-stream=10 --watched-key-total=10 --key-space-size=10 --put-rate=1000000 --put-total=$WATCH_PUTS"
  [lease-keepalive]="--clients=100 --conns=10 lease-keepalive --total=$RANGE_TOTAL"
)
readonly PUT_ARGS="--key-size=$KEY_SIZE --val-size=$VALUE_SIZE --sequential-keys --key-space-size=$KEY_SPACE"

# Results, keyed "system:workload".
declare -A RPS=() P50=() P99=() ERRS=() STATUS=() FSYNCS=()
declare -A RSS_MIB=() LEADER_OF=() LOAD_BEFORE=() LOAD_AFTER=() VERSION_OF=()
# CPU during each workload (clock ticks, /proc): the leader, the two other members, the whole
# machine busy, the whole machine in all; keyed "system:workload".
declare -A CPU_LEADER=() CPU_OTHERS=() CPU_BUSY=() CPU_TOTAL=()
NOTES=()
FAILED=0

# --- processes and cleanup ---------------------------------------------------------------------

PIDS=()        # servers of the running system
BENCH_PID=""   # the running benchmark (under timeout)
WORK=""
STOP_REQUESTED=0

alive() {
  local pid=$1 stat
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if read -r stat <"/proc/$pid/stat" 2>/dev/null; then
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]] || return 1
  fi
  return 0
}

# SIGTERM to every server of the running system, SIGKILL after 20 s.
stop_servers() {
  local pid deadline left
  for pid in "${PIDS[@]}"; do
    alive "$pid" && kill -TERM "$pid" 2>/dev/null
  done
  deadline=$((SECONDS + 20))
  while :; do
    left=0
    for pid in "${PIDS[@]}"; do
      alive "$pid" && left=$((left + 1))
    done
    ((left == 0)) && break
    if ((SECONDS >= deadline)); then
      for pid in "${PIDS[@]}"; do
        if alive "$pid"; then
          log "pid $pid did not stop after SIGTERM; SIGKILL"
          kill -KILL "$pid" 2>/dev/null
        fi
      done
      deadline=$((SECONDS + 5))
    fi
    sleep 0.2
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null
  done
  PIDS=()
}

cleanup() {
  trap '' INT TERM # a second Ctrl-C must not cut the shutdown short
  if [[ -n "$BENCH_PID" ]] && alive "$BENCH_PID"; then
    kill -TERM "$BENCH_PID" 2>/dev/null
    wait "$BENCH_PID" 2>/dev/null
  fi
  BENCH_PID=""
  ((${#PIDS[@]} == 0)) || stop_servers
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    if ((KEEP)); then
      log "kept $WORK"
    else
      rm -rf -- "$WORK"
    fi
  fi
}
trap cleanup EXIT
trap 'STOP_REQUESTED=1; log "interrupted; stopping"; exit 130' INT TERM

# --- preparation -------------------------------------------------------------------------------

START_DATE="$(date -u)"
START_DAY="$(date -u "+%F %H:%M UTC")"
START_LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)"

if [[ -z "$BENCH_BIN" ]]; then
  log "preparing etcd's benchmark tool (bench/etcd_benchmark_setup.sh)"
  BENCH_BIN="$(bash "$REPO/bench/etcd_benchmark_setup.sh" --cache-dir="$CACHE_DIR" | tail -n 1)" ||
    die "bench/etcd_benchmark_setup.sh failed"
else
  # The servers and etcdctl are still needed: let the setup script install packages only if the
  # commands are missing.
  if ! command -v etcdctl >/dev/null || { ((RUN_ETCD)) && [[ ! -x /usr/bin/etcd ]]; }; then
    bash "$REPO/bench/etcd_benchmark_setup.sh" --cache-dir="$CACHE_DIR" >/dev/null || die "setup failed"
  fi
fi
[[ -x "$BENCH_BIN" ]] || die "benchmark binary $BENCH_BIN is not executable"
BENCH_BIN="$(cd "$(dirname "$BENCH_BIN")" && pwd)/$(basename "$BENCH_BIN")"
command -v etcdctl >/dev/null || die "etcdctl not found (Debian package etcd-client)"
((!RUN_ETCD)) || [[ -x /usr/bin/etcd ]] || die "/usr/bin/etcd not found (Debian package etcd-server)"
BENCH_INFO="$(cat "$(dirname "$BENCH_BIN")/BUILD_INFO" 2>/dev/null || echo "$BENCH_BIN")"

[[ -n "$WORK_PARENT" ]] || WORK_PARENT="$CACHE_DIR/runs"
mkdir -p "$WORK_PARENT" || die "cannot create $WORK_PARENT"
WORK="$(mktemp -d "$WORK_PARENT/compare-etcd.XXXXXX")" || die "cannot create a directory in $WORK_PARENT"
FS_TYPE="$(stat -f -c %T "$WORK")"
if [[ "$FS_TYPE" == tmpfs || "$FS_TYPE" == ramfs ]]; then
  die "$WORK is on $FS_TYPE: the comparison needs data on disk; pass --work-dir=DIR on a disk"
fi
FREE_KIB="$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')"
# amaters refuses writes below storage.min_free_bytes (1 GiB by default); leave room for both.
((FREE_KIB > 3 * 1024 * 1024)) || die "less than 3 GiB free under $WORK_PARENT; use --work-dir"
DF_LINE="$(df -PT "$WORK" | awk 'NR == 2 { print $1, $2 }')"
log "run directory $WORK ($DF_LINE)"

if ((RUN_AMATERS)); then
  if [[ -z "$AMATERS_BIN" ]]; then
    log "building amaters-server (./bazelw build -c opt //server:amaters-server)"
    (cd "$REPO" && ./bazelw build -c opt //server:amaters-server) >"$WORK/bazel-build.log" 2>&1 || {
      tail -n 30 "$WORK/bazel-build.log" >&2
      die "the amaters build failed (full log above is the tail of $WORK/bazel-build.log)"
    }
    bin_dir="$(cd "$REPO" && ./bazelw info -c opt bazel-bin 2>/dev/null)" || die "bazel info failed"
    AMATERS_BIN="$bin_dir/server/amaters-server"
  fi
  [[ -x "$AMATERS_BIN" ]] || die "$AMATERS_BIN is not executable"
  # Our own copy: other builds in this checkout may replace the output while we measure.
  cp "$AMATERS_BIN" "$WORK/amaters-server" || die "cannot copy $AMATERS_BIN"
  AMATERS_BIN="$WORK/amaters-server"
fi

COMMIT="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l | tr -d ' ')"

# --- ports -------------------------------------------------------------------------------------

client_port() { echo $((BASE_PORT + ($1 - 1) * 10)); }
peer_port() { echo $((BASE_PORT + ($1 - 1) * 10 + 1)); }
admin_port() { echo $((BASE_PORT + ($1 - 1) * 10 + 2)); }

port_in_use() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

check_ports_free() {
  local i p
  for ((i = 1; i <= 3; i++)); do
    for p in "$(client_port "$i")" "$(peer_port "$i")" "$(admin_port "$i")"; do
      port_in_use "$p" && die "port $p on 127.0.0.1 is in use; choose another --base-port"
    done
  done
  return 0
}

ALL_ENDPOINTS="127.0.0.1:$(client_port 1),127.0.0.1:$(client_port 2),127.0.0.1:$(client_port 3)"

# --- helpers -----------------------------------------------------------------------------------

# Prints "ENDPOINT MEMBER_ID" of the member that is leader by its own account; fails when none is.
find_leader() {
  local i ep out member leader
  for ((i = 1; i <= 3; i++)); do
    ep="127.0.0.1:$(client_port "$i")"
    out="$(etcdctl --endpoints="$ep" --dial-timeout=2s --command-timeout=3s endpoint status -w json 2>/dev/null)" || continue
    member="$(grep -o '"member_id":[0-9]*' <<<"$out" | head -n 1 | cut -d: -f2)"
    leader="$(grep -o '"leader":[0-9]*' <<<"$out" | head -n 1 | cut -d: -f2)"
    if [[ -n "$member" && "$member" != 0 && "$member" == "$leader" ]]; then
      echo "$ep $member"
      return 0
    fi
  done
  return 1
}

# Waits until a leader is known; prints it like find_leader.
wait_for_leader() {
  local deadline=$((SECONDS + 30)) out
  while ((SECONDS < deadline)); do
    if out="$(find_leader)"; then
      echo "$out"
      return 0
    fi
    sleep 0.5
  done
  return 1
}

# The leader's WAL fsync counter (Prometheus text), or "" when not available.
fsync_count() { # SYSTEM LEADER_INDEX
  local url metric
  if [[ "$1" == etcd ]]; then
    url="http://127.0.0.1:$(client_port "$2")/metrics"
    metric="etcd_disk_wal_fsync_duration_seconds_count"
  else
    url="http://127.0.0.1:$(admin_port "$2")/metrics"
    metric="amaters_wal_fsyncs_total"
  fi
  curl -s -m 5 "$url" 2>/dev/null |
    awk -v m="$metric" '$1 == m || index($1, m "{") == 1 { s += $2; found = 1 } END { if (found) printf "%.0f\n", s }'
}

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
proc_ticks() {
  local stat
  read -r stat <"/proc/$1/stat" 2>/dev/null || { echo 0; return; }
  stat="${stat##*) }" # fields from 3 on; the command name may hold spaces
  awk '{ print $12 + $13 }' <<<"$stat"
}

# "busy total" clock ticks of the whole machine since boot (/proc/stat: busy = all but idle and
# iowait).
machine_ticks() {
  awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

# "leader others busy total" ticks now, for the running system's members.
cpu_sample() { # LEADER_INDEX
  local i leader=0 others=0 t
  for ((i = 1; i <= ${#PIDS[@]}; i++)); do
    t="$(proc_ticks "${PIDS[i - 1]}")"
    if ((i == $1)); then leader=$((leader + t)); else others=$((others + t)); fi
  done
  echo "$leader $others $(machine_ticks)"
}

vmhwm_mib() {
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null
}

# Runs one workload against the running system: stores its figures under SYSTEM:WORKLOAD.
run_workload() { # SYSTEM WORKLOAD ENDPOINTS LEADER_INDEX
  local sys=$1 w=$2 eps=$3 li=$4 out="$WORK/$1-$2.out" err="$WORK/$1-$2.err"
  local -a args
  # shellcheck disable=SC2206  # W_ARGS holds words without spaces inside them
  args=(${W_ARGS[$w]})
  [[ "$w" == put-* ]] && args+=($PUT_ARGS)
  local f0 f1 c0 c1
  f0="$(fsync_count "$sys" "$li")"
  c0="$(cpu_sample "$li")"
  log "$sys $w: benchmark --endpoints=$eps --precise ${args[*]}"
  timeout "$WORKLOAD_TIMEOUT" "$BENCH_BIN" --endpoints="$eps" --precise "${args[@]}" >"$out" 2>"$err" &
  BENCH_PID=$!
  wait "$BENCH_PID"
  local rc=$?
  BENCH_PID=""
  c1="$(cpu_sample "$li")"
  f1="$(fsync_count "$sys" "$li")"
  local key="$sys:$w"
  local -a a b
  read -r -a a <<<"$c0"
  read -r -a b <<<"$c1"
  CPU_LEADER[$key]=$((b[0] - a[0]))
  CPU_OTHERS[$key]=$((b[1] - a[1]))
  CPU_BUSY[$key]=$((b[2] - a[2]))
  CPU_TOTAL[$key]=$((b[3] - a[3]))
  if ((rc == 124)); then
    STATUS[$key]="timeout"
    NOTES+=("$sys $w: timed out after ${WORKLOAD_TIMEOUT}s (--timeout)")
    FAILED=1
    return
  fi
  # The report: "  Requests/sec:\tX", "  50% in X secs.", "  99% in X secs.", and under
  # "Error distribution:" lines "  [N]\tmessage". watch prints two reports (watch creation,
  # then events received): the last one counts. Progress bars end in \r, not \n.
  local parsed
  parsed="$(tr '\r' '\n' <"$out" | awk '
    /Requests\/sec:/ { rps = $2 }
    /^ *50% in / { p50 = $3 }
    /^ *99% in / { p99 = $3 }
    /^Error distribution:/ { in_err = 1; next }
    in_err && /^ *\[[0-9]+\]/ { n = $1; gsub(/[^0-9]/, "", n); errs += n }
    END { if (rps != "") printf "%s %s %s %d\n", rps, p50, p99, errs }')"
  if [[ -z "$parsed" || $rc -ne 0 ]]; then
    STATUS[$key]="failed"
    NOTES+=("$sys $w: the benchmark exited with status $rc; last lines: $(tail -n 3 "$err" | tr '\n' ' ')")
    FAILED=1
    [[ -n "$parsed" ]] || return
  fi
  local rps p50 p99 errs
  read -r rps p50 p99 errs <<<"$parsed"
  RPS[$key]="$rps"
  P50[$key]="$p50"
  P99[$key]="$p99"
  ERRS[$key]="$errs"
  if [[ -n "$f0" && -n "$f1" ]]; then FSYNCS[$key]=$((f1 - f0)); fi
  [[ -n "${STATUS[$key]:-}" ]] || STATUS[$key]="ok"
  if ((errs > 0)); then
    NOTES+=("$sys $w: $errs requests failed: $(tr '\r' '\n' <"$out" | sed -n '/^Error distribution:/,$p' | sed -n '2,4p' | tr '\n' ' ')")
    FAILED=1
  fi
  log "$sys $w: $(printf '%.1f req/s, p50 %.2f ms, p99 %.2f ms, %d errors' "$rps" "$(awk -v x="$p50" 'BEGIN { print x * 1000 }')" "$(awk -v x="$p99" 'BEGIN { print x * 1000 }')" "$errs")"
}

# Runs every workload on the running SYSTEM (started, leader elected).
run_all_workloads() { # SYSTEM
  local sys=$1 leader_ep leader_id li eps w now
  read -r leader_ep leader_id <<<"$(wait_for_leader)" || true
  [[ -n "${leader_ep:-}" ]] || { NOTES+=("$sys: no leader found"); FAILED=1; return 1; }
  li=$(((${leader_ep##*:} - BASE_PORT) / 10 + 1))
  LEADER_OF[$sys]="member $li ($leader_ep)"
  log "$sys: leader is member $li at $leader_ep"
  eps="$leader_ep"
  [[ "$ENDPOINTS_MODE" == all ]] && eps="$ALL_ENDPOINTS"
  # The key range-100 reads, written before any workload so that both systems read the same.
  local value
  value="$(head -c "$VALUE_SIZE" /dev/zero | tr '\0' 'v')"
  etcdctl --endpoints="$leader_ep" --command-timeout=10s put "$RANGE_KEY" "$value" >/dev/null ||
    { NOTES+=("$sys: could not write $RANGE_KEY"); FAILED=1; return 1; }
  LOAD_BEFORE[$sys]="$(cut -d' ' -f1-3 /proc/loadavg)"
  for w in "${WORKLOADS[@]}"; do
    ((STOP_REQUESTED)) && return 1
    run_workload "$sys" "$w" "$eps" "$li"
    read -r now _ <<<"$(find_leader)" || now=""
    if [[ "$now" != "$leader_ep" ]]; then
      NOTES+=("$sys: the leader changed during $w (was $leader_ep, now ${now:-none}); later workloads went to the old leader")
      FAILED=1
    fi
  done
  LOAD_AFTER[$sys]="$(cut -d' ' -f1-3 /proc/loadavg)"
  local i rss=""
  for ((i = 1; i <= 3; i++)); do
    rss+="${rss:+ / }$(vmhwm_mib "${PIDS[i - 1]}")"
  done
  RSS_MIB[$sys]="$rss"
}

# --- etcd --------------------------------------------------------------------------------------

run_etcd() {
  check_ports_free
  local i cluster=""
  for ((i = 1; i <= 3; i++)); do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$(peer_port "$i")"
  done
  mkdir -p "$WORK/etcd" || die "cannot create $WORK/etcd"
  VERSION_OF[etcd]="$(/usr/bin/etcd --version 2>/dev/null | head -n 1)"
  log "starting etcd (${VERSION_OF[etcd]}) members on $ALL_ENDPOINTS"
  for ((i = 1; i <= 3; i++)); do
    setsid /usr/bin/etcd --name "m$i" --data-dir "$WORK/etcd/m$i" \
      --listen-client-urls "http://127.0.0.1:$(client_port "$i")" \
      --advertise-client-urls "http://127.0.0.1:$(client_port "$i")" \
      --listen-peer-urls "http://127.0.0.1:$(peer_port "$i")" \
      --initial-advertise-peer-urls "http://127.0.0.1:$(peer_port "$i")" \
      --initial-cluster "$cluster" --initial-cluster-token amaters-compare-etcd \
      --initial-cluster-state new --logger=zap --log-outputs=stderr \
      </dev/null >"$WORK/etcd/m$i.log" 2>&1 &
    PIDS+=($!)
  done
  local deadline=$((SECONDS + 60))
  until etcdctl --endpoints="$ALL_ENDPOINTS" --dial-timeout=2s --command-timeout=3s endpoint health >/dev/null 2>&1; do
    for ((i = 1; i <= 3; i++)); do
      alive "${PIDS[i - 1]}" || { tail -n 5 "$WORK/etcd/m$i.log" >&2; die "etcd member $i exited"; }
    done
    ((SECONDS < deadline)) || die "etcd not healthy after 60 s (logs in $WORK/etcd; --keep keeps them)"
    sleep 0.5
  done
  run_all_workloads etcd
  log "stopping etcd"
  stop_servers
}

# --- amaters -----------------------------------------------------------------------------------

run_amaters() {
  check_ports_free
  local i peers=""
  for ((i = 1; i <= 3; i++)); do
    peers+="${peers:+, }\"$i:127.0.0.1:$(peer_port "$i")\""
  done
  mkdir -p "$WORK/amaters" || die "cannot create $WORK/amaters"
  VERSION_OF[amaters]="$("$AMATERS_BIN" version 2>/dev/null | head -n 1), commit $COMMIT"
  for ((i = 1; i <= 3; i++)); do
    # Defaults for everything else: [storage.wal] sync_mode = "always" (fdatasync before a write
    # is acknowledged), as etcd's default.
    cat >"$WORK/amaters/node$i.toml" <<EOF
[server]
bind_address = "127.0.0.1:$(client_port "$i")"
data_dir = "$WORK/amaters/node$i"

[cluster]
node_id = $i
peers = [$peers]

[metrics]
bind_address = "127.0.0.1:$(admin_port "$i")"
EOF
    mkdir -p "$WORK/amaters/node$i"
    "$AMATERS_BIN" validate-config --config="$WORK/amaters/node$i.toml" >/dev/null 2>&1 ||
      die "amaters node $i: invalid configuration: $("$AMATERS_BIN" validate-config --config="$WORK/amaters/node$i.toml" 2>&1)"
  done
  # AMATERS_* variables would override the configuration (e.g. the sync mode): not ours to inherit.
  local -a clean_env=()
  while IFS='=' read -r var _; do
    [[ "$var" == AMATERS_* ]] && clean_env+=(-u "$var")
  done < <(env)
  log "starting amaters (${VERSION_OF[amaters]}) nodes on $ALL_ENDPOINTS"
  for ((i = 1; i <= 3; i++)); do
    (cd "$WORK/amaters" && exec env "${clean_env[@]}" setsid "$AMATERS_BIN" start --config="$WORK/amaters/node$i.toml") \
      </dev/null >"$WORK/amaters/node$i.log" 2>&1 &
    PIDS+=($!)
  done
  local deadline=$((SECONDS + 60)) ready
  while :; do
    ready=0
    for ((i = 1; i <= 3; i++)); do
      alive "${PIDS[i - 1]}" || { tail -n 5 "$WORK/amaters/node$i.log" >&2; die "amaters node $i exited"; }
      [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$(admin_port "$i")/readyz")" == 200 ]] &&
        ready=$((ready + 1))
    done
    ((ready == 3)) && break
    ((SECONDS < deadline)) || die "amaters not ready after 60 s (logs in $WORK/amaters; --keep keeps them)"
    sleep 0.5
  done
  run_all_workloads amaters
  log "stopping amaters"
  stop_servers
}

# --- run ---------------------------------------------------------------------------------------

((RUN_ETCD)) && run_etcd
((RUN_AMATERS)) && run_amaters
END_DATE="$(date -u)"

# --- table -------------------------------------------------------------------------------------

ms() { awk -v x="$1" 'BEGIN { printf "%.2f", x * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

cell() { # SYSTEM WORKLOAD -> "req/s | p50 | p99"
  local k="$1:$2"
  if [[ -z "${RPS[$k]:-}" ]]; then
    printf '%s | %s | %s' "${STATUS[$k]:--}" - -
  else
    printf '%.0f | %s | %s' "${RPS[$k]}" "$(ms "${P50[$k]}")" "$(ms "${P99[$k]}")"
  fi
}

make_table() {
  echo "| workload | etcd req/s | etcd p50 ms | etcd p99 ms | amaters req/s | amaters p50 ms | amaters p99 ms | req/s ratio | p50 ratio | p99 ratio |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local w e a
  for w in "${WORKLOADS[@]}"; do
    e="etcd:$w" a="amaters:$w"
    local r1="-" r2="-" r3="-"
    if [[ -n "${RPS[$e]:-}" && -n "${RPS[$a]:-}" ]]; then
      r1="$(ratio "${RPS[$a]}" "${RPS[$e]}")"
      r2="$(ratio "${P50[$a]}" "${P50[$e]}")"
      r3="$(ratio "${P99[$a]}" "${P99[$e]}")"
    fi
    echo "| $w: ${W_DESC[$w]} | $(cell etcd "$w") | $(cell amaters "$w") | $r1 | $r2 | $r3 |"
  done
}

make_fsync_table() {
  echo "| workload | requests | etcd leader fsyncs | etcd req/fsync | amaters leader fsyncs | amaters req/fsync |"
  echo "|---|---:|---:|---:|---:|---:|"
  local w s total line
  for w in "${WORKLOADS[@]}"; do
    total="$(grep -oE -- '--(put-)?total=[0-9]+' <<<"${W_ARGS[$w]}" | cut -d= -f2)"
    line="| $w | $total"
    for s in etcd amaters; do
      local f="${FSYNCS[$s:$w]:-}"
      if [[ -n "$f" ]]; then
        line+=" | $f | $(ratio "$total" "$f")"
      else
        line+=" | - | -"
      fi
    done
    echo "$line |"
  done
}

# CPU per request during each workload, from /proc: the leader's process, the other two members
# and the rest of the machine (the benchmark tool above all), in microseconds, and how busy the
# machine's CPUs were. With both CPUs busy, the sum of the three bounds the request rate.
make_cpu_table() {
  local hz
  hz="$(getconf CLK_TCK)"
  echo "| workload | system | req/s | leader CPU µs/req | other members µs/req | rest of machine µs/req | all µs/req | machine busy |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  local w s k total
  for w in "${WORKLOADS[@]}"; do
    total="$(grep -oE -- '--(put-)?total=[0-9]+' <<<"${W_ARGS[$w]}" | cut -d= -f2)"
    for s in etcd amaters; do
      k="$s:$w"
      [[ -n "${CPU_TOTAL[$k]:-}" && -n "${RPS[$k]:-}" ]] || continue
      awk -v w="$w" -v s="$s" -v rps="${RPS[$k]}" -v n="$total" -v hz="$hz" \
        -v l="${CPU_LEADER[$k]}" -v o="${CPU_OTHERS[$k]}" -v b="${CPU_BUSY[$k]}" -v t="${CPU_TOTAL[$k]}" '
        function us(ticks) { return ticks / hz * 1e6 / n }
        BEGIN {
          rest = b - l - o; if (rest < 0) rest = 0
          printf "| %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f %% |\n", w, s, rps,
            us(l), us(o), us(rest), us(b), (t > 0 ? 100 * b / t : 0)
        }'
    done
  done
}

make_rss() {
  echo "| system | leader | peak RSS (VmHWM) MiB, node 1 / 2 / 3 | load average before | after |"
  echo "|---|---|---|---|---|"
  local s
  for s in etcd amaters; do
    [[ -n "${LEADER_OF[$s]:-}" ]] || continue
    echo "| $s | ${LEADER_OF[$s]} | ${RSS_MIB[$s]:--} | ${LOAD_BEFORE[$s]:--} | ${LOAD_AFTER[$s]:--} |"
  done
}

TABLE="$(make_table)"
FSYNC_TABLE="$(make_fsync_table)"
RSS_TABLE="$(make_rss)"
CPU_TABLE="$(make_cpu_table)"
if [[ "$ENDPOINTS_MODE" == leader ]]; then
  EP_TEXT="every request to the leader (\`--endpoints=<leader>\`, found with \`etcdctl endpoint status\`)"
else
  EP_TEXT="connections spread over the three members (\`--endpoints=$ALL_ENDPOINTS\`)"
fi

echo
echo "etcd vs amaters, 3 members each on 127.0.0.1, data on disk ($DF_LINE), key $KEY_SIZE B, value $VALUE_SIZE B;"
echo "$EP_TEXT; ratios are amaters / etcd."
echo
echo "$TABLE"
echo
echo "$FSYNC_TABLE"
echo
echo "$CPU_TABLE"
echo
echo "$RSS_TABLE"
if ((${#NOTES[@]} > 0)); then
  echo
  printf 'note: %s\n' "${NOTES[@]}"
fi

# --- record ------------------------------------------------------------------------------------

readonly SECTION_TITLE='## Side by side with etcd 3.4 (`bench/compare_etcd.sh`)'

record_run() {
  local cmd="bench/compare_etcd.sh${ORIGINAL_ARGS[*]:+ ${ORIGINAL_ARGS[*]}}"
  local dirty_text=""
  ((DIRTY == 0)) || dirty_text=" (the working tree had $DIRTY uncommitted paths, \`git status --porcelain\`)"
  local entry
  entry="$(
    echo "### Run of $START_DAY"
    echo
    echo "- Date: \`$START_DATE\` to \`$END_DATE\`"
    echo "- Machine: \`nproc\` = $(nproc); \`uname -a\` = \`$(uname -a)\`; data: $DF_LINE"
    echo "- Commit: \`$COMMIT\`$dirty_text"
    echo "- Command (from the repository root): \`$cmd\`"
    echo "- Load (\`/proc/loadavg\`): $START_LOADAVG at the start; per system below"
    echo "- Versions: ${VERSION_OF[etcd]:-etcd not run}; ${VERSION_OF[amaters]:-amaters not run}; $BENCH_INFO"
    echo "- Requests: $EP_TEXT; put-1 $PUT1_TOTAL, put-100 $PUT100_TOTAL, put-1000 $PUT1000_TOTAL, range-100, srange-100 and lease-keepalive $RANGE_TOTAL, range-1 and srange-1 $PUT1_TOTAL requests, watch $WATCH_PUTS puts; workloads run: ${WORKLOADS[*]}"
    echo
    echo '```'
    echo "$TABLE"
    echo
    echo "$FSYNC_TABLE"
    echo
    echo "$CPU_TABLE"
    echo
    echo "$RSS_TABLE"
    ((${#NOTES[@]} == 0)) || printf 'note: %s\n' "${NOTES[@]}"
    echo '```'
  )"
  local tmp="$RESULTS.compare_etcd.$$"
  if [[ -f "$RESULTS" ]] && grep -qxF "$SECTION_TITLE" "$RESULTS"; then
    # Insert at the end of our section: before the next "## " heading after it, or at the end.
    ENTRY="$entry" awk -v title="$SECTION_TITLE" '
      function flush(blank_after) {
        if (last != "") print ""
        print ENVIRON["ENTRY"]
        if (blank_after) print ""
        done = 1
      }
      $0 == title { in_sec = 1; print; last = $0; next }
      in_sec && !done && /^## / { flush(1) }
      { print; last = $0 }
      END { if (in_sec && !done) flush(0) }
    ' "$RESULTS" >"$tmp" || return 1
  else
    {
      [[ -f "$RESULTS" ]] && cat "$RESULTS"
      echo
      echo "$SECTION_TITLE"
      echo
      echo "See docs/benchmarks.md for what runs and what each column means."
      echo
      echo "$entry"
    } >"$tmp" || return 1
  fi
  mv -f "$tmp" "$RESULTS"
}

if ((RECORD)); then
  if record_run; then
    log "recorded in $RESULTS"
  else
    log "could not record the run in $RESULTS"
    FAILED=1
  fi
fi

exit $((FAILED ? 1 : 0))
