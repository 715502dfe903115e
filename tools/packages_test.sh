#!/usr/bin/env bash
# tools/packages.txt (what tools/setup installs) and third_party/BUILD.bazel (the system
# libraries the build links) cannot drift apart: every cc_library in third_party is named by a
# package line, every //third_party:NAME a line names is a cc_library there, and tools/setup
# installs from that list.
#   tools/packages_test.sh PACKAGES_TXT THIRD_PARTY_BUILD SETUP
set -uo pipefail
list="$1"
build="$2"
setup="$3"
problems=0
fail() {
  echo "FAIL: $*"
  problems=$((problems + 1))
}

# cc_library names in third_party/BUILD.bazel: the `name = "..."` line after `cc_library(`.
mapfile -t libraries < <(awk '/^cc_library\(/ { in_lib = 1 } in_lib && /name = "/ {
  match($0, /"[^"]+"/); print substr($0, RSTART + 1, RLENGTH - 2); in_lib = 0 }' "$build")
mapfile -t named < <(sed -e 's/#.*//' "$list" | grep -oE '//third_party:[A-Za-z0-9_]+' |
  sed 's|//third_party:||' | sort -u)
mapfile -t packages < <(sed -e 's/#.*//' "$list" | awk 'NF { print $1 }')

((${#libraries[@]} >= 10)) || fail "found only ${#libraries[@]} cc_library targets in $build"
# member WORD LIST...: whether WORD is one of LIST (no pipeline: `printf | grep -q` under pipefail
# fails at random when grep exits at its first match and printf gets SIGPIPE).
member() {
  local word="$1" w
  shift
  for w in "$@"; do [[ "$w" == "$word" ]] && return 0; done
  return 1
}
for lib in "${libraries[@]}"; do
  member "$lib" "${named[@]}" || fail "//third_party:$lib has no package line in $list"
done
for lib in "${named[@]}"; do
  member "$lib" "${libraries[@]}" ||
    fail "$list names //third_party:$lib, which is not a cc_library in $build"
done
dups="$(printf '%s\n' "${packages[@]}" | sort | uniq -d)"
[[ -z "$dups" ]] || fail "packages listed twice: $dups"
for p in "${packages[@]}"; do
  [[ "$p" =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || fail "not a Debian package name: '$p'"
done
grep -q 'packages.txt' "$setup" || fail "$setup does not read packages.txt"

echo "packages_test: ${#packages[@]} packages, ${#libraries[@]} libraries, ${problems} problems"
((problems == 0))
