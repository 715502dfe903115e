#!/usr/bin/env bash
# Snapshots on a real three-node cluster (docs/snapshots.md): memory, WAL size, restart time
# and the rejoin of a wiped follower after a long write load, with snapshots on (the defaults)
# and off (snapshot_threshold_entries = 0: every entry stays in memory and in the WAL), one
# after the other on the same machine. Results: bench/RESULTS.md.
#
#   bench/snapshot.sh [--puts=N] [--keys=K] [--value-bytes=V] [--threads=T] [--modes=on,off]
#                     [--base-port=P] [--work-dir=DIR] [--keep]
#
# Defaults: 5,000,000 puts over 100,000 keys with 256-byte values, 64 clients on the leader.
# Builds amaters-server and bench/put_load with -c opt. For each mode:
#   1. three nodes on 127.0.0.1 (data under DIR/<mode>), the load through the leader;
#   2. per node: peak RSS (VmHWM), bytes of data/wal and data/kv, snapshot_index and
#      first_log_index of /status;
#   3. a follower restarted (SIGKILL, start): seconds until a linearizable get through it of the
#      last key answers;
#   4. a follower wiped (SIGKILL, data directory deleted, start): seconds until it answers a
#      linearizable get of the last key, and how (snapshot installed or log replayed).
# Prints one block per mode; append it to bench/RESULTS.md with the command, commit and load.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PUTS=5000000
KEYS=100000
VALUE_BYTES=256
THREADS=64
MODES="on,off"
BASE_PORT=24790
WORK_DIR=""
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --puts=*) PUTS="${arg#*=}" ;;
    --keys=*) KEYS="${arg#*=}" ;;
    --value-bytes=*) VALUE_BYTES="${arg#*=}" ;;
    --threads=*) THREADS="${arg#*=}" ;;
    --modes=*) MODES="${arg#*=}" ;;
    --base-port=*) BASE_PORT="${arg#*=}" ;;
    --work-dir=*) WORK_DIR="${arg#*=}" ;;
    --keep) KEEP=1 ;;
    --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "snapshot.sh: unknown flag $arg (see --help)" >&2; exit 2 ;;
  esac
done

cd "$REPO"
./bazelw build -c opt //server:amaters-server //bench:put_load >/dev/null 2>&1 ||
  { echo "snapshot.sh: build failed (./bazelw build -c opt //server:amaters-server //bench:put_load)" >&2; exit 1; }
SERVER="$REPO/bazel-bin/server/amaters-server"
LOAD="$REPO/bazel-bin/bench/put_load"
ETCDCTL=/usr/bin/etcdctl
[[ -x "$ETCDCTL" ]] || { echo "snapshot.sh: needs $ETCDCTL (tools/setup installs it)" >&2; exit 1; }
[[ -n "$WORK_DIR" ]] || WORK_DIR="$(mktemp -d /var/tmp/amaters-snapshot-bench.XXXXXX)"
mkdir -p "$WORK_DIR"

client_port() { echo $((BASE_PORT + 10 * ($1 - 1))); }
peer_port() { echo $((BASE_PORT + 10 * ($1 - 1) + 1)); }
admin_port() { echo $((BASE_PORT + 10 * ($1 - 1) + 2)); }
PEERS=""
for i in 1 2 3; do PEERS+="${PEERS:+, }\"$i:127.0.0.1:$(peer_port "$i")\""; done
declare -A PID

start_node() {  # mode, node
  local dir="$WORK_DIR/$1" i=$2
  "$SERVER" start --config="$dir/node$i.toml" >>"$dir/node$i.log" 2>&1 &
  PID[$i]=$!
}
stop_all() {
  for i in 1 2 3; do
    if [[ -n "${PID[$i]:-}" ]]; then kill -9 "${PID[$i]}" 2>/dev/null || true; wait "${PID[$i]}" 2>/dev/null || true; fi
    PID[$i]=""
  done
}
trap stop_all EXIT
status_field() {  # node, field
  curl -s "http://127.0.0.1:$(admin_port "$1")/status" | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}
leader() {
  for i in 1 2 3; do
    if curl -s "http://127.0.0.1:$(admin_port "$i")/status" | grep '"role":"leader"' >/dev/null; then echo "$i"; return; fi
  done
}
wait_leader() {
  for _ in $(seq 1 600); do l="$(leader)"; [[ -n "$l" ]] && { echo "$l"; return; }; sleep 0.1; done
  echo "snapshot.sh: no leader" >&2; exit 1
}
# Seconds (3 decimals) from $1 (date +%s.%N) until a linearizable get of $LAST through node $2.
time_to_read() {
  local from=$1 node=$2
  for _ in $(seq 1 3000); do
    if ETCDCTL_API=3 "$ETCDCTL" --endpoints="127.0.0.1:$(client_port "$node")" \
      --command-timeout=2s get "$LAST" --print-value-only 2>/dev/null | grep . >/dev/null; then
      echo "$(date +%s.%N) $from" | awk '{printf "%.3f", $1 - $2}'
      return
    fi
    sleep 0.05
  done
  echo "timeout"
}
kib() { du -sk "$1" 2>/dev/null | cut -f1; }

run_mode() {
  local mode=$1 dir="$WORK_DIR/$1" threshold=10000
  [[ "$mode" == off ]] && threshold=0
  rm -rf "$dir"
  mkdir -p "$dir/data"
  for i in 1 2 3; do
    cat >"$dir/node$i.toml" <<EOF
[server]
bind_address = "127.0.0.1:$(client_port "$i")"
data_dir = "$dir/data/node$i"

[storage]
snapshot_threshold_entries = $threshold

[cluster]
node_id = $i
peers = [$PEERS]

[metrics]
bind_address = "127.0.0.1:$(admin_port "$i")"
EOF
    start_node "$mode" "$i"
  done
  local l
  l="$(wait_leader)"
  local t0 t1
  t0=$(date +%s)
  "$LOAD" --endpoint="127.0.0.1:$(client_port "$l")" --total="$PUTS" --keys="$KEYS" \
    --value_bytes="$VALUE_BYTES" --threads="$THREADS" | tee "$dir/load.txt"
  t1=$(date +%s)
  LAST=$(printf "key-%08d" $(((PUTS - 1) % KEYS)))
  echo "== mode=$mode snapshot_threshold_entries=$threshold puts=$PUTS keys=$KEYS value_bytes=$VALUE_BYTES load_seconds=$((t1 - t0))"
  for i in 1 2 3; do
    local hwm
    hwm=$(grep VmHWM "/proc/${PID[$i]}/status" | awk '{print $2}')
    echo "node$i peak_rss_kib=$hwm wal_kib=$(kib "$dir/data/node$i/wal") kv_kib=$(kib "$dir/data/node$i/kv") snap_kib=$(kib "$dir/data/node$i/snap") snapshot_index=$(status_field "$i" snapshot_index) first_log_index=$(status_field "$i" first_log_index) commit=$(status_field "$i" commit_index)"
  done
  local f=$(( l % 3 + 1 ))
  kill -9 "${PID[$f]}"; wait "${PID[$f]}" 2>/dev/null || true
  local s
  s=$(date +%s.%N); start_node "$mode" "$f"
  echo "restart node$f: seconds_to_linearizable_read=$(time_to_read "$s" "$f") peak_rss_kib_after=$(grep VmHWM "/proc/${PID[$f]}/status" | awk '{print $2}')"
  kill -9 "${PID[$f]}"; wait "${PID[$f]}" 2>/dev/null || true
  rm -rf "$dir/data/node$f"
  s=$(date +%s.%N); start_node "$mode" "$f"
  local secs how
  secs=$(time_to_read "$s" "$f")
  if grep -q "snapshot installed" "$dir/node$f.log"; then how=snapshot; else how=log; fi
  echo "wiped node$f: seconds_to_linearizable_read=$secs caught_up_by=$how state_kib=$(kib "$dir/data/node$f/kv")"
  stop_all
}

echo "snapshot.sh: $(date -u '+%Y-%m-%d %H:%M UTC') commit $(git -C "$REPO" rev-parse --short HEAD) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=',' read -ra mode_list <<<"$MODES"
for m in "${mode_list[@]}"; do run_mode "$m"; done
((KEEP)) || rm -rf "$WORK_DIR"
