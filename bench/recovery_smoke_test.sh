#!/usr/bin/env bash
# Keeps //bench:recovery working under `bazel test //...`: runs bench/recovery.sh with a tiny
# WAL (3000 entries) and checks that every step ran and that each server restart served the
# read (correctness only; the figures live in bench/RESULTS.md).
set -euo pipefail
script="$TEST_SRCDIR/amaters/bench/recovery.sh"
out="$("$script" --dir="$TEST_TMPDIR/recovery" --entries=3000 2>&1)" || {
  echo "$out"
  echo "FAIL: recovery.sh exited with an error"
  exit 1
}
echo "$out"
fail=0
expect() {
  local pattern="$1" count="$2" n
  n="$(grep -c -- "$pattern" <<<"$out" || true)"
  if [[ "$n" != "$count" ]]; then
    echo "FAIL: expected $count line(s) matching '$pattern', got $n"
    fail=1
  fi
}
expect '^prepare: wal: 3000 entries' 1
expect '^prepare: kv: applied index 3000 in RocksDB' 1
expect '^replay: node::StartFromDisk: 3000 entries' 2
expect '^replay: RocksDbStateMachine::Open: applied index 3000' 2
expect '^serve: first_answer .* read_ok ' 3
expect '^serve: server memory when the read answered: VmHWM [0-9]' 3
expect '^== done' 1
expect '^prepare: entry: key 8 B, value 196 B, command 215 B, record 256 B' 1
exit "$fail"
