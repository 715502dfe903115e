#!/usr/bin/env bash
# Fails when a file of the repository names a document that is not in the repository.
#
#   tools/doc_refs_test.sh [ROOT [FILE...]]
#   tools/doc_refs_test.sh --source-of RUNFILE     (under Bazel: the tree RUNFILE links into)
#
# ROOT is the repository root (default: `git rev-parse --show-toplevel`; under Bazel, ".", the
# test's working directory). The files checked are the FILEs given (paths relative to ROOT;
# under Bazel, where there is no .git, the test rule passes them and has them as data, together
# with every document they name), else the files git knows (tracked, plus untracked ones not
# ignored) when ROOT has a .git, else every file (or runfiles symlink) under ROOT outside .git
# and the bazel-* directories. Checks:
#   (a) no file mentions the design brief, style guide or developer notes that used to live
#       outside the repository, nor the directory they lived in (the design is docs/design.md);
#   (b) every path of the form docs/<name>.md (any depth below docs/) that a file mentions exists;
#   (c) in Markdown files, every relative link target `](path)` (without its #anchor; http(s)
#       and mailto links and pure anchors are skipped, and so are fenced code blocks) exists
#       relative to the linking file's directory.
# Prints FILE:LINE: and the missing name for each problem, then
# "doc_refs_test: N files checked, M problems"; exits 1 if M > 0.
set -uo pipefail

root="${1:-}"
if [[ "$root" == "--source-of" ]]; then
  # Under Bazel (//tools:doc_refs_test): $2 is a runfile at the root of the repository, a
  # symlink into the source tree; check that tree, and the files git knows there.
  root="$(dirname "$(readlink -f "${2:?--source-of needs a file}")")"
  shift 2
  set -- "$root"
elif [[ -z "$root" ]]; then
  root="$(git rev-parse --show-toplevel 2>/dev/null)" || {
    echo "doc_refs_test: give the repository root as the first argument" >&2
    exit 2
  }
fi
[[ -d "$root" ]] || { echo "doc_refs_test: $root is not a directory" >&2; exit 2; }
shift $(($# > 0 ? 1 : 0))
cd "$root" || exit 2

files=()
if (($# > 0)); then
  files=("$@")
elif [[ -e .git ]]; then
  while IFS= read -r f; do files+=("$f"); done < <(git ls-files --cached --others --exclude-standard)
else
  while IFS= read -r f; do files+=("${f#./}"); done < <(
    find . \( -name .git -o -name 'bazel-*' \) -prune -o \( -type f -o -type l \) -print | sort
  )
fi

# Only files that exist (a tracked file may have been deleted in the working tree).
existing=()
for f in "${files[@]}"; do
  [[ -f "$f" ]] && existing+=("$f")
done
files=("${existing[@]+"${existing[@]}"}")

problems=0
report() { # FILE LINE MESSAGE
  echo "$1:$2: $3"
  problems=$((problems + 1))
}

# grep -nIoE over every file in batches; output FILE:LINE:MATCH. Binary files are skipped.
grep_all() { # PATTERN
  ((${#files[@]} > 0)) || return 0
  printf '%s\0' "${files[@]}" | xargs -0 grep -HnIoE -- "$1" 2>/dev/null || true
}

# (a) Documents that are not part of the repository. The patterns are split so that this file
# does not match itself.
outside='\.\./shar''ed/|DESI''GN\.md|STY''LE\.md|DEVELO''PERS\.md'
while IFS=: read -r file line match; do
  [[ -n "$file" ]] || continue
  report "$file" "$line" "names $match, which is not in the repository (see docs/design.md)"
done < <(grep_all "$outside")

# (b) docs/<name>.md paths, wherever they appear. A path is taken from its start: the character
# before `docs/` must not belong to a path (so other/docs/x.md and URLs do not count), except
# for leading ../ steps, which are dropped.
while IFS=: read -r file line match; do
  [[ -n "$file" ]] || continue
  path="${match#[!A-Za-z0-9_./-]}" # the boundary character, if the match has one
  while [[ "$path" == ../* ]]; do path="${path#../}"; done
  [[ "$path" == docs/* ]] || continue
  [[ -f "$path" ]] || report "$file" "$line" "names $path, which does not exist"
done < <(grep_all '(^|[^A-Za-z0-9_./-])(\.\./)*docs/([A-Za-z0-9_.-]+/)*[A-Za-z0-9_-]+\.md')

# (c) Relative Markdown links.
md=()
for f in "${files[@]}"; do
  [[ "$f" == *.md ]] && md+=("$f")
done
if ((${#md[@]} > 0)); then
  while IFS=$'\t' read -r file line target; do
    [[ -n "$file" ]] || continue
    target="${target#<}"
    target="${target%>}"
    case "$target" in
      http://* | https://* | mailto:* | '#'* | '') continue ;;
    esac
    path="${target%%#*}"
    [[ -n "$path" ]] || continue
    dir="$(dirname "$file")"
    if [[ "$path" == /* ]]; then
      resolved=".$path"
    else
      resolved="$dir/$path"
    fi
    [[ -e "$resolved" ]] || report "$file" "$line" "links to $target, which does not exist ($resolved)"
  done < <(
    awk '
      FNR == 1 { fenced = 0 }
      /^[ \t]*(```|~~~)/ { fenced = !fenced; next }
      fenced { next }
      {
        s = $0
        while ((i = index(s, "](")) > 0) {
          s = substr(s, i + 2)
          j = index(s, ")")
          if (j == 0) break
          t = substr(s, 1, j - 1)
          sub(/[ \t]+".*$/, "", t)  # a link title: [text](path "title")
          print FILENAME "\t" FNR "\t" t
          s = substr(s, j + 1)
        }
      }' "${md[@]}"
  )
fi

echo "doc_refs_test: ${#files[@]} files checked, $problems problems"
((problems == 0))
