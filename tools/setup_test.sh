#!/usr/bin/env bash
# Tests tools/setup without root and without the network: dpkg-query, apt-get, sudo and id are
# stubs on PATH that log how they were called.
#   tools/setup_test.sh SETUP PACKAGES_TXT
set -uo pipefail

setup="$(realpath "$1")"
list="$(realpath "$2")"
work="$(mktemp -d "${TEST_TMPDIR:-/tmp}/setup_test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
failures=0
passed=0

mapfile -t all < <(sed -e 's/#.*//' "$list" | awk 'NF { print $1 }')
((${#all[@]} > 5)) || { echo "FAIL: $list lists ${#all[@]} packages"; exit 1; }

# --- stubs -------------------------------------------------------------------------------------
mkdir -p "$work/bin"
cat >"$work/bin/dpkg-query" <<'EOF'
#!/usr/bin/env bash
# As the real one: one line per installed package, an error and exit 1 for any unknown one.
echo "dpkg-query $*" >>"$STUB_LOG"
status=0
for arg in "$@"; do
  case "$arg" in -W | -f=* | --showformat=*) continue ;; esac
  if grep -qxF -- "$arg" "$STUB_INSTALLED"; then
    echo "$arg install ok installed"
  else
    echo "dpkg-query: no packages found matching $arg" >&2
    status=1
  fi
done
exit $status
EOF
cat >"$work/bin/apt-get" <<'EOF'
#!/usr/bin/env bash
echo "apt-get $* DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-}" >>"$STUB_LOG"
for arg in "$@"; do
  if [[ "$arg" == "${STUB_APT_FAIL:-none}" ]]; then
    echo "E: stub apt-get: $arg failed" >&2
    exit 100
  fi
done
exit 0
EOF
cat >"$work/bin/sudo" <<'EOF'
#!/usr/bin/env bash
echo "sudo $1" >>"$STUB_LOG"
exec "$@"
EOF
cat >"$work/bin/id" <<'EOF'
#!/usr/bin/env bash
[[ "$1" == "-u" ]] && echo "${STUB_UID:-0}"
EOF
chmod +x "$work/bin/"*

# run NAME UID INSTALLED_FILE [APT_FAIL]: runs tools/setup with the stubs; sets $out, $log, $rc.
run() {
  local name="$1" uid="$2" installed="$3" apt_fail="${4:-none}"
  : >"$work/$name.log"
  out="$(PATH="$work/bin:/usr/bin:/bin" STUB_LOG="$work/$name.log" STUB_INSTALLED="$installed" \
    STUB_UID="$uid" STUB_APT_FAIL="$apt_fail" bash "$setup" 2>&1)"
  rc=$?
  log="$(cat "$work/$name.log")"
}

check() {  # check DESCRIPTION COMMAND...
  local what="$1"
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failures=$((failures + 1))
    echo "FAIL: $what"
    echo "  output: $out"
    echo "  calls:  ${log//$'\n'/ | }"
  fi
}

named_in() {  # the package names on the apt-get install line of $log, sorted
  local line
  line="$(grep '^apt-get install' <<<"$log")"
  tr ' ' '\n' <<<"${line% DEBIAN_FRONTEND=*}" |
    grep -vE '^(apt-get|install|-y|-q|--no-install-recommends)$' | sort | tr '\n' ' '
}

count() { grep -c -- "$1" <<<"$log" || true; }

# The packages to leave "missing": the second and the last of the list, and g++ (a name with
# characters special to regular expressions).
printf '%s\n' "${all[@]}" >"$work/all"
missing=("${all[1]}" "g++" "${all[-1]}")
grep -vxF -e "${missing[0]}" -e "${missing[1]}" -e "${missing[2]}" "$work/all" >"$work/some"
: >"$work/none"

# (a) everything installed: one dpkg-query, no apt call, exit 0, silent.
run all_installed 0 "$work/all"
check "(a) exit 0 when all are installed" test "$rc" -eq 0
check "(a) no apt-get call when all are installed" test "$(count '^apt-get')" -eq 0
check "(a) one dpkg-query naming every package" test "$(count '^dpkg-query')" -eq 1
check "(a) nothing printed" test -z "$out"

# (b) some missing, dpkg-query exiting 1: one update, one install naming exactly those.
run some_missing 0 "$work/some"
check "(b) exit 0 after installing" test "$rc" -eq 0
check "(b) one apt-get update" test "$(count '^apt-get update')" -eq 1
check "(b) one apt-get install" test "$(count '^apt-get install')" -eq 1
install_line="$(grep '^apt-get install' <<<"$log")"
named="$(named_in)"
expected="$(printf '%s\n' "${missing[@]}" | sort | tr '\n' ' ')"
check "(b) install names exactly the missing packages ('$named' vs '$expected')" \
  test "$named" == "$expected"
check "(b) noninteractive" grep -q 'DEBIAN_FRONTEND=noninteractive' <<<"$install_line"
line_of() { grep -n -m1 -- "$1" <<<"$log" | cut -d: -f1; }
check "(b) update before install" test "$(line_of '^apt-get update')" -lt "$(line_of '^apt-get install')"
check "(b) no sudo as root" test "$(count '^sudo')" -eq 0
check "(b) says what it installs" grep -qF "installing missing packages: ${missing[0]}" <<<"$out"

# Nothing installed at all (a fresh machine): one install naming every package.
run fresh 0 "$work/none"
check "fresh machine: exit 0" test "$rc" -eq 0
check "fresh machine: one install naming every package" \
  test "$(named_in)" == "$(sort "$work/all" | tr '\n' ' ')"

# (c) apt-get failing: non-zero exit, and the message names the packages.
run install_fails 0 "$work/some" install
check "(c) non-zero exit when apt-get install fails" test "$rc" -ne 0
check "(c) the error names the packages" \
  grep -qF "apt-get install failed for: ${missing[*]}" <<<"$out"
run update_fails 0 "$work/some" update
check "(c) non-zero exit when apt-get update fails" test "$rc" -ne 0
check "(c) no install after a failed update" test "$(count '^apt-get install')" -eq 0
check "(c) the update error names the packages" grep -qF "${missing[*]}" <<<"$out"

# (d) not root: apt-get runs through sudo, both calls.
run not_root 1000 "$work/some"
check "(d) exit 0 as a user with sudo" test "$rc" -eq 0
check "(d) sudo for update and install" test "$(count '^sudo')" -eq 2
check "(d) apt-get still called once each" test "$(count '^apt-get install')" -eq 1
run not_root_all 1000 "$work/all"
check "(d) no sudo when nothing is missing" test "$(count '^sudo')" -eq 0

echo "setup_test: ${passed} passed, ${failures} failed"
((failures == 0))
