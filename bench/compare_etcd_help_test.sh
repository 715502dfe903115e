#!/usr/bin/env bash
# bench/compare_etcd.sh, bench/etcd_benchmark_setup.sh and bench/clientv3_check.sh parse their
# flags: --help prints the
# usage and exits 0, usage errors exit 2, both before anything is installed, built or started.
# (The comparison itself needs apt, the network once and minutes of load: run it by hand,
# docs/benchmarks.md.)
set -uo pipefail

dir="${TEST_SRCDIR:-$PWD/..}/amaters/bench"
[[ -f "$dir/compare_etcd.sh" ]] || dir="$PWD/bench"
compare="$dir/compare_etcd.sh"
setup="$dir/etcd_benchmark_setup.sh"
clientv3="$dir/clientv3_check.sh"
failures=0

check() { # DESCRIPTION EXPECTED_STATUS PATTERN COMMAND...
  local what=$1 want=$2 pattern=$3 out status
  shift 3
  out="$("$@" 2>&1)"
  status=$?
  if [[ "$status" != "$want" ]]; then
    echo "FAIL: $what: exit status $status, want $want; output:"
    echo "$out" | head -n 5
    failures=$((failures + 1))
  elif ! grep -E -- "$pattern" >/dev/null <<<"$out"; then
    echo "FAIL: $what: output does not match /$pattern/:"
    echo "$out" | head -n 5
    failures=$((failures + 1))
  else
    echo "ok: $what"
  fi
}

check "compare --help" 0 'range-100' bash "$compare" --help
check "compare --help names every workload" 0 'put-1000 .*1000 clients' bash "$compare" --help
check "compare unknown flag" 2 'unknown flag --frobnicate' bash "$compare" --frobnicate
check "compare bad --endpoints" 2 '--endpoints must be leader or all' bash "$compare" --endpoints=some
check "compare bad --systems" 2 'unknown system "mysql"' bash "$compare" --systems=etcd,mysql
check "compare bad --workloads" 2 'unknown workload "put-7"' bash "$compare" --workloads=watch,put-7
check "compare --help names watch and lease-keepalive" 0 'lease-keepalive' bash "$compare" --help
check "compare bad total" 2 '--put100-total takes a request count' bash "$compare" --put100-total=0
check "compare bad port" 2 '--base-port must be' bash "$compare" --base-port=80
check "compare flag without value" 2 '--work-dir needs a value' bash "$compare" --work-dir
check "setup --help" 0 'GOPATH mode' bash "$setup" --help
check "clientv3_check --help" 0 'SIGKILLed half way' bash "$clientv3" --help
check "clientv3_check unknown flag" 2 'unknown flag --frobnicate' bash "$clientv3" --frobnicate
check "clientv3_check bad port" 2 '--base-port must be' bash "$clientv3" --base-port=x
check "setup unknown flag" 2 'unknown flag --frobnicate' bash "$setup" --frobnicate
check "setup --print-mirror takes --mirror" 0 '^http://mirror[.]invalid/debian$' \
  bash "$setup" --print-mirror --mirror=http://mirror.invalid/debian/
check "compare syntax" 0 '' bash -n "$compare"
check "setup syntax" 0 '' bash -n "$setup"

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
