#!/usr/bin/env bash
# `sim --jobs=N` prints what a sequential run prints: the same seed lines in seed order and the
# same summary (trace hash included); only the wall-clock figures differ. Checked on a passing
# slice and on a slice where a planted bug fails some seeds.
set -uo pipefail
SIM="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-_main}/sim/sim"

# The output without progress lines and wall-clock figures.
stable() { grep -v '^progress:' | sed -E 's/ wall_seconds=[0-9.]+//'; }

check() {  # check ARGS...: a sequential run and a --jobs=2 run of the same seeds agree
  local seq par
  seq="$("$SIM" "$@" | stable)"
  par="$("$SIM" "$@" --jobs=2 | stable)"
  if [[ "$seq" != "$par" ]]; then
    echo "FAIL: sim $* differs with --jobs=2"
    diff <(echo "$seq") <(echo "$par")
    exit 1
  fi
  echo "ok: sim $* --jobs=2: $(tail -1 <<<"$par")"
}

check --seeds=1..16
check --seeds=1..40 --bug=vote_twice
grep -q 'failed_seeds=' <<<"$("$SIM" --seeds=1..40 --bug=vote_twice --jobs=2)" ||
  { echo "FAIL: vote_twice caught no seed of 1..40"; exit 1; }
"$SIM" --seeds=1..2 --jobs=0 >/dev/null 2>&1 && { echo "FAIL: --jobs=0 accepted"; exit 1; }
echo "PASS"
