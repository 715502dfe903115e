#!/usr/bin/env bash
# The long swarm campaign (--config=long; docs/simulation.md §12): AMATERS_SIM_CAMPAIGN_SEEDS
# default-swarm seeds (default 20000) must all pass, and every planted bug must fail at least
# one seed of 1..300 (retry_aborted, the rarest: of 1..1000) with no scenario and no other
# flag. Both on two threads (--jobs=2). Prints the summary lines and each bug's failing seeds.
set -uo pipefail
SIM="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-_main}/sim/sim"
SEEDS="${AMATERS_SIM_CAMPAIGN_SEEDS:-20000}"
status=0

out="$("$SIM" --seeds="1..$SEEDS" --jobs=2 | grep -v '^progress:')"
echo "$out" | tail -20
if ! grep -q '^result: pass ' <<<"$out"; then
  echo "FAIL: seeds 1..$SEEDS do not all pass"
  status=1
fi

for bug in $("$SIM" --list-bugs); do
  last=300
  [[ "$bug" == retry_aborted ]] && last=1000
  line="$("$SIM" --seeds="1..$last" --bug="$bug" --jobs=2 | tail -1)"
  if [[ "$line" == "result: fail "* ]]; then
    echo "ok: --bug=$bug fails seeds $(sed -E 's/.*failed_seeds=([0-9,]*).*/\1/' <<<"$line" | cut -c1-80) of 1..$last"
  else
    echo "FAIL: --bug=$bug passes seeds 1..$last: $line"
    status=1
  fi
done
exit $status
