#!/usr/bin/env bash
# Fuzzing campaign runner (docs/fuzzing.md).
#
#   fuzz/run.sh --target=NAME [--minutes=M]    one target
#   fuzz/run.sh --all [--minutes=M]            every target in turn, M minutes each
#
# For each target: builds //fuzz:<target>_fuzzer with --config=fuzz (clang, libFuzzer, ASan,
# UBSan) in a private Bazel output base (so the clang build does not replace the gcc outputs of
# the shared one), runs libFuzzer for M minutes on a scratch copy of fuzz/corpus/<target>/,
# merges what it found into fuzz/corpus/<target>/ with -merge=1 (only inputs that add coverage
# are kept, so the corpus stays minimal), deduplicates crashes by their stack signature (the
# top frames of our code), copies one input per unique crash into fuzz/regressions/<target>/
# and prints the one-line command that reproduces it. Exit status 1 if any target crashed.
set -euo pipefail

ALL_TARGETS=(wal_decoder raft_step config_loader etcd_handler peer_request sim)

usage() {
  cat <<EOF
usage: fuzz/run.sh (--target=NAME | --all) [options]

  --target=NAME       fuzz one target: ${ALL_TARGETS[*]}
  --all               fuzz every target in turn
  --minutes=M         fuzzing time per target (default 10; fractions allowed, e.g. 0.5)
  --jobs=N            libFuzzer worker processes per target (default 1)
  --output-base=DIR   private Bazel output base (default /root/.cache/bazel-fuzz)
  --work-dir=DIR      scratch corpus, logs and crash files (default /tmp/amaters-fuzz)
  --no-merge          do not merge new inputs into fuzz/corpus/<target>/
  --no-regressions    report crashes but do not copy them into fuzz/regressions/<target>/
  --minimize-only     no fuzzing: only re-minimize fuzz/corpus/<target>/ (the merge step)
  --help              this text

Output per target: a summary line (execs, exec/s, corpus before -> after, crashes) and, for
each unique crash, its file under fuzz/regressions/<target>/ and the reproducing command.
Exit status: 0 no crash, 1 at least one crash, 2 usage or build error.
EOF
}

targets=()
minutes=10
jobs=1
output_base=/root/.cache/bazel-fuzz
work_dir=/tmp/amaters-fuzz
merge=1
keep_regressions=1
minimize_only=0
for arg in "$@"; do
  case "$arg" in
    --target=*) targets+=("${arg#--target=}") ;;
    --all) targets=("${ALL_TARGETS[@]}") ;;
    --minutes=*) minutes="${arg#--minutes=}" ;;
    --jobs=*) jobs="${arg#--jobs=}" ;;
    --output-base=*) output_base="${arg#--output-base=}" ;;
    --work-dir=*) work_dir="${arg#--work-dir=}" ;;
    --no-merge) merge=0 ;;
    --no-regressions) keep_regressions=0 ;;
    --minimize-only) minimize_only=1 ;;
    --help | -h) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
if [[ ${#targets[@]} -eq 0 ]]; then
  usage >&2
  exit 2
fi
for t in "${targets[@]}"; do
  if [[ ! " ${ALL_TARGETS[*]} " == *" $t "* ]]; then
    echo "run.sh: unknown target $t (known: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done
if ! [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "run.sh: --minutes wants a number, got $minutes" >&2
  exit 2
fi
seconds=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); if (s < 1) s = 1; print s }')

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# --symlink_prefix=/ : no bazel-bin/bazel-out symlinks, which would otherwise be pointed at the
# private output base.
bazel_fuzz=(./bazelw --output_base="$output_base")
build_flags=(--config=fuzz --symlink_prefix=/)

echo "== building ${targets[*]/%/_fuzzer} (--config=fuzz, output base $output_base)"
labels=()
for t in "${targets[@]}"; do labels+=("//fuzz:${t}_fuzzer"); done
mkdir -p "$work_dir"
if ! "${bazel_fuzz[@]}" build "${build_flags[@]}" "${labels[@]}" >"$work_dir/build.log" 2>&1; then
  grep -E 'ERROR|error:' "$work_dir/build.log" | head -20 >&2
  echo "run.sh: build failed (log: $work_dir/build.log)" >&2
  exit 2
fi
bin_dir="$("${bazel_fuzz[@]}" info "${build_flags[@]}" bazel-bin 2>/dev/null)"

# The stack signature of a crash: the first frames of our code (fuzz/, engine/, server/, sim/)
# in the sanitizer's report, function names only, or the AM_CHECK location when there is one.
signature() {
  local log="$1"
  local check
  check="$(grep -m1 -oE '[A-Za-z0-9_./-]+\.(cc|h):[0-9]+: invariant violated' "$log" | sed 's/: invariant violated//' || true)"
  local frames
  frames="$(grep -E '^ +#[0-9]+ ' "$log" |
    grep -E ' [^ ]*(fuzz|engine|server|sim)/[^ ]+\.(cc|h):[0-9]+' |
    grep -vE 'LLVMFuzzerTestOneInput|CheckFailed' |
    head -3 |
    sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ in //; s/\(anonymous namespace\)/anon/g; s/ [^ ]*$//; s/\(.*//' |
    tr '\n' ';' || true)"
  local kind
  kind="$(grep -m1 -oE 'ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [a-zA-Z-]+' "$log" ||
    grep -m1 -oE 'runtime error: [a-z ]+' "$log" || true)"
  echo "${kind:-crash}|${check}|${frames}"
}

# Largest input per target: enough for its format (see fuzz/<target>_fuzz.cc), small enough
# that the corpus stays small. Longer seeds are read truncated while fuzzing.
max_len_of() {
  case "$1" in
    wal_decoder) echo 8192 ;;
    raft_step) echo 3074 ;;
    sim) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

total_unique=0
summary=()
for t in "${targets[@]}"; do
  fuzzer="$bin_dir/fuzz/${t}_fuzzer"
  corpus="fuzz/corpus/$t"
  regress="fuzz/regressions/$t"
  tdir="$work_dir/$t"
  rm -rf "$tdir"
  mkdir -p "$tdir/corpus" "$tdir/crashes" "$tdir/logs" "$corpus"
  cp -r "$corpus/." "$tdir/corpus/" 2>/dev/null || true
  before=$(find "$corpus" -type f | wc -l)
  before_bytes=$(du -sb "$corpus" | cut -f1)
  echo "== $t: fuzzing for ${seconds}s (corpus $before files, ${before_bytes} bytes) $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  log="$tdir/logs/fuzz.log"
  # -fork keeps fuzzing after a crash (each crash is saved to -artifact_prefix); one worker
  # unless --jobs says otherwise. -rss_limit_mb and -timeout bound a runaway input.
  set +e
  if [[ $minimize_only -eq 1 ]]; then
    echo "   (--minimize-only: no fuzzing)" >"$log"
  else
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$fuzzer" "$tdir/corpus" $([[ -d "$regress" ]] && echo "$regress") \
      -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
      -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 -max_len="$(max_len_of "$t")" \
      -artifact_prefix="$tdir/crashes/" -print_final_stats=1 >"$log" 2>&1
  fi
  status=$?
  set -e
  # fork mode's progress lines: "#N: cov: C ft: F corp: K exec/s E oom/timeout/crash: ..."
  last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
  execs="$(echo "$last" | grep -oE '^#[0-9]+' | tr -d '#' || true)"
  execs="${execs:-0}"
  rate="$(awk -v e="$execs" -v s="$seconds" 'BEGIN { printf "%d", e / s }')"
  cov="$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || echo '?')"

  # Merge into the repository's corpus. The named seeds (fuzz/make_seeds) always stay; the
  # inputs found by fuzzing (named by their SHA-1) are re-minimized on every run: an input is
  # kept only if it adds edge coverage over the seeds and the inputs kept before it
  # (-use_counters=0: hit counts do not count, or a schedule-driven target would keep hundreds
  # of inputs that only loop more often).
  if [[ $merge -eq 1 ]]; then
    mkdir -p "$tdir/merged"
    for f in "$corpus"/*; do
      [[ -f "$f" ]] || continue
      if [[ ! "$(basename "$f")" =~ ^[0-9a-f]{40}$ ]]; then cp "$f" "$tdir/merged/"; fi
    done
    if "$fuzzer" -merge=1 -use_counters=0 -timeout=25 -rss_limit_mb=2560 \
      "$tdir/merged" "$corpus" "$tdir/corpus" >"$tdir/logs/merge.log" 2>&1; then
      find "$corpus" -type f -regextype egrep -regex '.*/[0-9a-f]{40}' -delete
      cp -n "$tdir/merged"/* "$corpus"/
    else
      echo "   (merge failed, corpus unchanged: $tdir/logs/merge.log)"
    fi
  fi
  after=$(find "$corpus" -type f | wc -l)
  after_bytes=$(du -sb "$corpus" | cut -f1)

  # Crashes: reproduce each saved input once to get its report, deduplicate by signature.
  declare -A seen=()
  unique=0
  crashes=0
  for c in "$tdir/crashes"/*; do
    [[ -f "$c" ]] || continue
    crashes=$((crashes + 1))
    rlog="$tdir/logs/$(basename "$c").log"
    ASAN_OPTIONS=detect_leaks=1:symbolize=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      timeout 120 "$fuzzer" -timeout=25 -rss_limit_mb=2560 "$c" >"$rlog" 2>&1 || true
    sig="$(signature "$rlog")"
    if [[ -n "${seen[$sig]:-}" ]]; then continue; fi
    seen[$sig]=1
    unique=$((unique + 1))
    dest="$c"
    if [[ $keep_regressions -eq 1 ]]; then
      mkdir -p "$regress"
      dest="$regress/$(basename "$c")"
      cp "$c" "$dest"
    fi
    echo "   crash: $sig"
    echo "     input:  $dest"
    echo "     report: $rlog"
    echo "     reproduce: ASAN_OPTIONS=detect_leaks=1 $fuzzer $dest"
    echo "     (gcc build: ./bazelw run //fuzz:${t}_corpus_test -- \$PWD/$dest)"
  done
  unset seen
  total_unique=$((total_unique + unique))
  line="$t: ${seconds}s execs=$execs exec/s=$rate cov=$cov crash/timeout/oom=$(echo "$last" | grep -oE 'crash: [0-9/]+' | sed 's/crash: //' || true) corpus $before -> $after files (${before_bytes} -> ${after_bytes} bytes) crash_inputs=$crashes unique_crashes=$unique fuzzer_exit=$status"
  summary+=("$line")
  echo "== $line"
done

echo
echo "== summary ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
for line in "${summary[@]}"; do echo "$line"; done
if [[ $total_unique -gt 0 ]]; then
  echo "result: $total_unique unique crash(es); pinned inputs are replayed by ./bazelw test //fuzz/..."
  exit 1
fi
echo "result: no crashes"
