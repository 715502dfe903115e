#!/usr/bin/env bash
# Recovery time and peak memory of a node restarting with a large WAL, measured on the
# real amaters-server. Results: bench/RESULTS.md.
#
#   ./bazelw run -c opt //bench:recovery -- [--dir=DIR] [--entries=N] [--value-bytes=V]
#                                           [--port=P] [--keep] [--no-reapply]
#                                           [--tool=PATH] [--server=PATH]
#
# Defaults: 4194304 entries (4M) with 196-byte values: 256-byte WAL records, 1 GiB of WAL.
# DIR (default a fresh /tmp/amaters-recovery.XXXXXX, removed at the end unless --keep) must be
# on the file system to measure. Steps (bench/recovery_tool.cc says what each one measures):
#   1. prepare: DIR/data/wal written by the real WAL writer, DIR/data/kv applied up to its end
#      (the state after a clean run of a single-node server);
#   2. replay, cold: the server's start-up work (WAL recover, RocksDB open, Node::Create) in
#      one process, after evicting DIR's files from the page cache (dd iflag=nocache on each
#      file: only these files, not the whole machine's cache);
#   3. replay, warm: the same again (files now in the page cache);
#   4. serve, warm: amaters-server started on DIR/data; time until a linearizable read of the
#      last written key returns its value; the server's peak RSS;
#   5. serve, cold: the same after evicting DIR's files from the page cache;
#   6. serve, state machine lost: DIR/data/kv removed, so the server re-applies all N entries
#      to a new RocksDB before the read can be served (page cache warm for the WAL); skipped
#      with --no-reapply (step 1's apply time says how long it would take).
# --tool / --server: the binaries to run (default: from the runfiles).
set -euo pipefail

DIR=""
ENTRIES=4194304
VALUE_BYTES=196
PORT=""
KEEP=0
REAPPLY=1
TOOL=""
SERVER=""
for arg in "$@"; do
  case "$arg" in
    --dir=*) DIR="${arg#*=}" ;;
    --entries=*) ENTRIES="${arg#*=}" ;;
    --value-bytes=*) VALUE_BYTES="${arg#*=}" ;;
    --port=*) PORT="${arg#*=}" ;;
    --keep) KEEP=1 ;;
    --no-reapply) REAPPLY=0 ;;
    --tool=*) TOOL="${arg#*=}" ;;
    --server=*) SERVER="${arg#*=}" ;;
    --help)
      sed -n '2,25p' "$0"
      exit 0
      ;;
    *)
      echo "recovery.sh: unknown flag $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

# The binaries, from the runfiles of `bazel run` / `bazel test`.
find_runfile() {
  local rel="$1" base
  for base in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$0.runfiles"; do
    if [[ -n "$base" && -x "$base/amaters/$rel" ]]; then
      echo "$base/amaters/$rel"
      return 0
    fi
  done
  echo "recovery.sh: cannot find $rel in the runfiles" >&2
  return 1
}
[[ -n "$TOOL" ]] || TOOL="$(find_runfile bench/recovery_tool)"
[[ -n "$SERVER" ]] || SERVER="$(find_runfile server/amaters-server)"

if [[ -z "$DIR" ]]; then
  DIR="$(mktemp -d "${TMPDIR:-/tmp}/amaters-recovery.XXXXXX")"
  ((KEEP)) || trap 'rm -rf "$DIR"' EXIT
else
  [[ "$DIR" == /* ]] || DIR="${BUILD_WORKING_DIRECTORY:-$PWD}/$DIR"
  mkdir -p "$DIR"
  [[ -z "$(ls -A "$DIR")" ]] || { echo "recovery.sh: $DIR is not empty" >&2; exit 2; }
  ((KEEP)) || trap 'rm -rf "$DIR"' EXIT
fi
if [[ -z "$PORT" ]]; then
  # A free pair of ports: nothing accepts connections there.
  for _ in $(seq 1 50); do
    PORT=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null &&
       ! (exec 3<>"/dev/tcp/127.0.0.1/$((PORT + 1))") 2>/dev/null; then
      break
    fi
  done
fi
DATA="$DIR/data"

evict() {
  # Drops DIR's files (only those) from the page cache.
  find "$DATA" -type f -print0 | while IFS= read -r -d '' f; do
    dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true
  done
}

echo "== recovery.sh: entries=$ENTRIES value_bytes=$VALUE_BYTES dir=$DIR port=$PORT"
echo "date: $(date -u)"
echo "machine: nproc=$(nproc) $(uname -srm); loadavg: $(cat /proc/loadavg)"
echo "file system: $(df -T "$DIR" | tail -1)"

echo "== 1. prepare"
prep="$("$TOOL" prepare --dir="$DATA" --entries="$ENTRIES" --value_bytes="$VALUE_BYTES" --apply)"
echo "$prep"
KEY="$(sed -n 's/^probe_key=//p' <<<"$prep")"
PREFIX="$(sed -n 's/^probe_prefix=//p' <<<"$prep")"
echo "du: wal $(du -sb "$DATA/wal" | cut -f1) bytes, kv $(du -sb "$DATA/kv" | cut -f1) bytes"

echo "== 2. replay, cold page cache"
evict
"$TOOL" replay --dir="$DATA"
echo "== 3. replay, warm page cache"
"$TOOL" replay --dir="$DATA"

serve() {
  local name="$1"
  "$TOOL" serve --dir="$DATA" --server="$SERVER" --port="$PORT" --probe_key="$KEY" \
    --probe_prefix="$PREFIX" --log="$DIR/server-$name.log"
  grep -h '"recovered"\|msg=recovered\| recovered ' "$DIR/server-$name.log" | head -1 || true
}
echo "== 4. serve, warm page cache (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
serve warm
echo "== 5. serve, cold page cache (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
evict
serve cold
if ((REAPPLY)); then
  echo "== 6. serve, state machine lost: re-apply every entry" \
    "(loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
  rm -rf "$DATA/kv"
  serve reapply
fi
echo "== done (loadavg $(cat /proc/loadavg))"
