#!/usr/bin/env bash
# //sim/chaos:chaos_test and :chaos_more_test: scenario scripts from sim/scenarios/ run against
# real amaters-server processes by the chaos runner (docs/chaos.md), each to a pass with a
# checked history.
#   chaos_test.sh core   leader crash, minority partition, one-way partitions, leader pause, full
#                        restart; a planted server bug caught; unsupported steps refused
#   chaos_test.sh more   rolling restarts, clogged links, flapping partitions, quorum loss, a
#                        full disk, a corrupted WAL; a 20-second soak with random faults whose
#                        exported schedule the simulator then runs
#   chaos_test.sh soak10 the 10-minute soak (--config=long)
set -uo pipefail
part="${1:?usage: chaos_test.sh core|more|soak10}"

CHAOS="$TEST_SRCDIR/amaters/sim/chaos/chaos"
SCENARIOS="$TEST_SRCDIR/amaters/sim/scenarios"
SIM="$TEST_SRCDIR/amaters/sim/sim"
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Runs one scenario; it must pass, and its summary must be the last line, with ops > 0,
# linearizable=yes and lost_acked=0.
run_scenario() {
  local name=$1 out="$TEST_TMPDIR/$1.out" rc
  "$CHAOS" --scenario="$SCENARIOS/$name" --dir="$TEST_TMPDIR/$name.run" \
    --html="$TEST_TMPDIR/$name.html" --trace="$TEST_TMPDIR/$name.trace" >"$out" 2>&1
  rc=$?
  local last
  last="$(tail -n 1 "$out")"
  echo "$name: exit $rc: $last"
  if ((rc != 0)); then
    fail "$name exited $rc"
    tail -n 40 "$out" >&2
    for log in "$TEST_TMPDIR/$name.run"/node*/amaters-server.log; do
      echo "--- $log (last lines)" >&2
      tail -n 15 "$log" >&2
    done
    return
  fi
  [[ "$last" =~ ^chaos:\ result=pass\ ops=([0-9]+)\ ok=([0-9]+)\ fail=[0-9]+\ info=[0-9]+\ faults=([0-9]+)\ linearizable=yes\ lost_acked=0\ wall_s=[0-9.]+$ ]] ||
    fail "$name: unexpected summary: $last"
  ((${BASH_REMATCH[2]:-0} > 0)) || fail "$name: no operation succeeded"
  ((${BASH_REMATCH[3]:-0} > 0)) || fail "$name: no fault was injected"
  [[ -s "$TEST_TMPDIR/$name.run/history.jsonl" ]] || fail "$name: no history written"
  grep -q '"type":"ok","f":"put"' "$TEST_TMPDIR/$name.run/history.jsonl" ||
    fail "$name: the history has no acknowledged put"
  # The timeline: the simulator's page, with the leader, the script's steps and the clients.
  local trace="$TEST_TMPDIR/$name.trace"
  grep -qE '^ +[0-9]+\.[0-9]{6} n[0-9] leader term [0-9]+$' "$trace" || fail "$name: no leader in the trace"
  grep -q " scenario .*$name:[0-9]*: " "$trace" || fail "$name: no script step in the trace"
  grep -q '   client client [0-9]* put(' "$trace" || fail "$name: no client operation in the trace"
  [[ "$(head -c 15 "$TEST_TMPDIR/$name.html")" == '<!DOCTYPE html>' ]] || fail "$name: no HTML timeline"
  grep -q '<g class="lane" data-node=' "$TEST_TMPDIR/$name.html" || fail "$name: the timeline has no lanes"
  if grep -q '<td>other lines</td>' "$TEST_TMPDIR/$name.html"; then
    fail "$name: the timeline has lines the page does not know"
  fi
}

core() {
  for s in five_nodes_lose_two.txt leader_isolated_minority.txt asymmetric_partition.txt \
    leader_pause.txt full_cluster_restart.txt; do
    run_scenario "$s"
  done
  planted_bug
  unsupported
}

more() {
  for s in rolling_restarts.txt clogged_link.txt flapping_partitions.txt \
    quorum_loss_and_regain.txt disk_full.txt disk_corruption.txt; do
    run_scenario "$s"
  done
  soak 20 3
}

# The planted bug stale_reads (linearizable reads answered from a node's own state) must be
# caught: the minority partition's history is not linearizable, exit 1.
planted_bug() {
  local out="$TEST_TMPDIR/bug.out" rc last
  "$CHAOS" --scenario="$SCENARIOS/leader_isolated_minority.txt" --bug=stale_reads \
    --dir="$TEST_TMPDIR/bug.run" >"$out" 2>&1
  rc=$?
  last="$(tail -n 1 "$out")"
  echo "planted bug stale_reads: exit $rc: $last"
  ((rc == 1)) || fail "planted bug stale_reads: exit $rc, want 1"
  [[ "$last" =~ ^chaos:\ result=fail\ .*\ linearizable=no\  ]] ||
    fail "planted bug stale_reads not caught: $last"
  grep -q 'not linearizable' "$out" || fail "planted bug stale_reads: no explanation printed"
}

# soak SECONDS SEED: a soak with random faults, its schedule exported and replayed by the
# simulator as it is; the schedule must have process and network faults.
soak() {
  local seconds=$1 seed=$2 soak_out rc last sim_out
  soak_out="$TEST_TMPDIR/soak.out"
  "$CHAOS" --seconds="$seconds" --random-faults --seed="$seed" \
    --export-scenario="$TEST_TMPDIR/soak.txt" --dir="$TEST_TMPDIR/soak.run" >"$soak_out" 2>&1
  rc=$?
  last="$(tail -n 1 "$soak_out")"
  echo "soak ${seconds}s seed $seed: exit $rc: $last"
  grep '^chaos: report:' "$soak_out"
  if ((rc != 0)); then
    fail "soak exited $rc"
    grep -v '^    op ' "$soak_out" | tail -n 40 >&2
    return
  fi
  [[ "$last" =~ ^chaos:\ result=pass\ .*\ linearizable=yes\ lost_acked=0\  ]] || fail "soak summary: $last"
  grep -q '^chaos: report: acked_puts=[1-9][0-9]* faults=[1-9]' "$soak_out" || fail "soak report: $(tail -n 2 "$soak_out")"
  grep -q 'progress: ops=' "$soak_out" || fail "soak: no progress line"
  grep -qE '^(crash|pause) ' "$TEST_TMPDIR/soak.txt" || fail "soak: the schedule has no process fault"
  grep -qE '^(isolate|block|clog) ' "$TEST_TMPDIR/soak.txt" || fail "soak: the schedule has no network fault"
  sim_out="$("$SIM" --scenario="$TEST_TMPDIR/soak.txt" 2>&1)" ||
    fail "the simulator did not pass the exported soak: $(tail -n 5 <<<"$sim_out")"
}

unsupported() {
  # Unsupported steps: exit 2 at parse time, every one named, no node started.
  local out rc
  printf 'nodes 3\noption drop 0.01\ncrash 1\nadd-learner 3\n' >"$TEST_TMPDIR/unsupported.txt"
  out="$("$CHAOS" --scenario="$TEST_TMPDIR/unsupported.txt" --dir="$TEST_TMPDIR/unsupported.run" 2>&1)"
  rc=$?
  ((rc == 2)) || fail "unsupported script: exit $rc, want 2: $out"
  grep -q 'unsupported.txt:2: `option drop 0.01`: not supported for real clusters' <<<"$out" ||
    fail "unsupported script: the option not named: $out"
  grep -q 'unsupported.txt:4: `add-learner 3`: not supported for real clusters' <<<"$out" ||
    fail "unsupported script: add-learner not named: $out"
  [[ ! -e "$TEST_TMPDIR/unsupported.run/node1" ]] || fail "unsupported script: a node was set up"
}

case "$part" in
  core) core ;;
  more) more ;;
  soak10) soak 600 1 ;;
  *) echo "unknown part $part" >&2; exit 2 ;;
esac

if ((failures > 0)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "all passed"
