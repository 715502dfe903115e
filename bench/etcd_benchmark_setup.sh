#!/usr/bin/env bash
# Builds etcd's own benchmark tool (tools/benchmark of etcd 3.4) offline from Debian packages and
# caches it outside the repository; prints the binary's path as the last line of stdout.
#
#   bench/etcd_benchmark_setup.sh [--cache-dir=DIR] [--rebuild] [--no-install] [--mirror=URL]
#   bench/etcd_benchmark_setup.sh --print-mirror
#
# Used by bench/compare_etcd.sh; see --help and docs/benchmarks.md. Nothing from etcd is kept in
# the repository.
set -euo pipefail

readonly PROG="etcd_benchmark_setup"

usage() {
  cat <<'EOF'
usage: bench/etcd_benchmark_setup.sh [FLAGS]

Makes sure the Debian packages the etcd comparison needs are installed (apt-get, with sudo when
not root), then builds etcd's benchmark tool (tools/benchmark, which Debian's
golang-etcd-server-dev does not ship) and caches it. The last line of stdout is the path of the
benchmark binary; progress goes to stderr.

How the tool is built, offline apart from the one source download:
  1. The version is that of the installed golang-etcd-server-dev (3.4.23-4 on Debian 12).
  2. MIRROR/pool/main/e/etcd/etcd_<version>.dsc names the upstream tarball and its SHA-256; the
     tarball is downloaded from the same pool and checked against it. MIRROR is the Debian
     archive this machine's apt already uses (see --mirror).
  3. Only tools/benchmark is unpacked, into a private GOPATH (src/go.etcd.io/etcd/tools/benchmark),
     and built with Debian's Go in GOPATH mode (GO111MODULE=off, GOPROXY=off,
     GOPATH=<private>:/usr/share/gocode) against the golang-*-dev packages, so every other
     import (clientv3, pkg/report, cobra, pb.v1, x/time, grpc, ...) is Debian's copy.

Flags:
  --cache-dir=DIR   where the tarball, the Go build cache and the binary go
                    (default ${XDG_CACHE_HOME:-~/.cache}/amaters-bench)
  --rebuild         build again even if a cached binary exists
  --no-install      do not run apt-get; fail if something is missing
  --mirror=URL      the Debian archive to download from: the URL under which pool/main/ lies.
                    Default: $DEBIAN_MIRROR if set, else the URI of this machine's apt source
                    for the Debian release itself (a `deb` entry whose suite is the release
                    codename from /etc/os-release, e.g. bookworm, not -security or -updates,
                    with component main), read from /etc/apt/sources.list.d/*.sources
                    (deb822) and /etc/apt/sources.list, /etc/apt/sources.list.d/*.list.
                    If the archive no longer has the installed version, give an archive
                    snapshot mirror of the Debian archive here.
  --print-mirror    print the mirror that would be used, and exit (installs and builds nothing)
  --help            this text

Packages installed when missing: golang-go etcd-server etcd-client golang-etcd-server-dev and the
golang-*-dev packages tools/benchmark imports (listed in GO_DEV_PACKAGES below), plus curl.
EOF
}

log() { echo "$PROG: $*" >&2; }
die() {
  echo "$PROG: error: $*" >&2
  exit 1
}

# HOME may be unset (e.g. under `bazel test`): the passwd entry, then /tmp.
HOME_DIR="${HOME:-$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6)}"
CACHE_DIR="${XDG_CACHE_HOME:-${HOME_DIR:-/tmp}/.cache}/amaters-bench"
REBUILD=0
INSTALL=1
MIRROR="${DEBIAN_MIRROR:-}"
PRINT_MIRROR=0
for arg in "$@"; do
  case "$arg" in
    --help | -h) usage; exit 0 ;;
    --cache-dir=*) CACHE_DIR="${arg#*=}" ;;
    --rebuild) REBUILD=1 ;;
    --no-install) INSTALL=0 ;;
    --mirror=*) MIRROR="${arg#*=}" ;;
    --print-mirror) PRINT_MIRROR=1 ;;
    *) echo "$PROG: unknown flag $arg (see --help)" >&2; exit 2 ;;
  esac
done

# --- mirror ------------------------------------------------------------------------------------

# Prints "URI<TAB>SUITE<TAB>COMPONENTS" for every enabled `deb` source in apt's one-line format
# ("deb [options] URI SUITE COMPONENT..."), one per line.
list_sources() { # FILE
  awk '
    { sub(/#.*/, "") }
    $1 != "deb" { next }
    {
      line = $0
      sub(/^[ \t]*deb[ \t]+/, "", line)
      if (line ~ /^\[/) sub(/^\[[^]]*\][ \t]*/, "", line)
      n = split(line, a, /[ \t]+/)
      comps = ""
      for (i = 3; i <= n; i++) comps = comps (comps == "" ? "" : " ") a[i]
      if (n >= 2) print a[1] "\t" a[2] "\t" comps
    }' "$1"
}

# The same for a deb822 .sources file: one line per URI and suite of each enabled stanza whose
# Types include deb. Field names are case-insensitive; a line starting with a blank continues
# the previous field; "#" lines are comments.
deb822_sources() { # FILE
  awk '
    function flush(   nu, ns, i, j, U, S) {
      if ((" " types " ") ~ / deb / && tolower(enabled) != "no") {
        nu = split(uris, U, " ")
        ns = split(suites, S, " ")
        for (i = 1; i <= nu; i++)
          for (j = 1; j <= ns; j++) print U[i] "\t" S[j] "\t" comps
      }
      types = uris = suites = comps = field = ""
      enabled = "yes"
    }
    function add(f, v) {
      gsub(/[ \t]+/, " ", v)
      sub(/^ /, "", v)
      sub(/ $/, "", v)
      if (f == "types") types = types " " v
      else if (f == "uris") uris = uris " " v
      else if (f == "suites") suites = suites " " v
      else if (f == "components") comps = comps (comps == "" ? "" : " ") v
      else if (f == "enabled") enabled = v
    }
    BEGIN { enabled = "yes" }
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ { add(field, $0); next }
    {
      c = index($0, ":")
      if (c == 0) next
      field = tolower(substr($0, 1, c - 1))
      add(field, substr($0, c + 1))
    }
    END { flush() }' "$1"
}

# The Debian archive this machine's apt uses: the URI of the first enabled `deb` source, in
# apt's order (sources.list, then sources.list.d/ by name), whose suite is the release codename
# (not -security, -updates or -backports) and whose components include main. When several
# match, one whose downloaded Release file says "Origin: Debian" wins (a third-party repository
# may use the codename as its suite too). Prints nothing when there is none.
# Arguments (for tests): apt's configuration directory, its lists directory, the codename.
apt_mirror() { # [ETC_DIR] [LISTS_DIR] [CODENAME]
  local etc="${1:-/etc/apt}" lists="${2:-/var/lib/apt/lists}" codename="${3:-}"
  if [[ -z "$codename" ]]; then
    codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")" || codename=""
  fi
  local files=() f
  [[ -f "$etc/sources.list" ]] && files+=("$etc/sources.list")
  for f in "$etc"/sources.list.d/*.list "$etc"/sources.list.d/*.sources; do
    [[ -f "$f" ]] && files+=("$f")
  done
  local first="" uri suite comps name
  while IFS=$'\t' read -r uri suite comps; do
    [[ "$uri" =~ ^https?:// ]] || continue
    if [[ -n "$codename" ]]; then
      [[ "$suite" == "$codename" ]] || continue
    else
      [[ "$suite" =~ ^[a-z]+$ ]] || continue # no codename known: any plain suite
    fi
    [[ " $comps " == *" main "* ]] || continue
    uri="${uri%/}"
    name="${uri#*://}"
    name="${name//\//_}_dists_${suite}"
    if grep -qsx 'Origin: Debian' "$lists/${name}_InRelease" "$lists/${name}_Release"; then
      echo "$uri"
      return 0
    fi
    [[ -n "$first" ]] || first="$uri"
  done < <(
    for f in "${files[@]}"; do
      case "$f" in
        *.sources) deb822_sources "$f" ;;
        *) list_sources "$f" ;;
      esac
    done
  )
  [[ -z "$first" ]] || echo "$first"
}

# Sets MIRROR from apt's sources unless --mirror or $DEBIAN_MIRROR gave one.
resolve_mirror() {
  [[ -n "$MIRROR" ]] || MIRROR="$(apt_mirror)"
  [[ -n "$MIRROR" ]] ||
    die "found no Debian archive in this machine's apt sources (a deb entry for the release codename with component main in /etc/apt/sources.list, /etc/apt/sources.list.d/*.list or *.sources); give one with --mirror=URL, the URL under which pool/main/ lies"
  MIRROR="${MIRROR%/}"
}

if ((PRINT_MIRROR)); then
  resolve_mirror
  echo "$MIRROR"
  exit 0
fi

# --- packages ----------------------------------------------------------------------------------

# What the comparison runs: Go to build the tool, etcd and etcdctl to run the reference cluster.
readonly RUNTIME_PACKAGES=(golang-go etcd-server etcd-client curl ca-certificates)
# What tools/benchmark imports (directly or through go.etcd.io/etcd/...), as Debian packages.
readonly GO_DEV_PACKAGES=(
  golang-etcd-server-dev
  golang-github-spf13-cobra-dev
  golang-github-spf13-pflag-dev
  golang-gopkg-cheggaaa-pb.v1-dev
  golang-golang-x-time-dev
  golang-github-bgentry-speakeasy-dev
  golang-github-dustin-go-humanize-dev
  golang-go.uber-zap-dev
  golang-google-grpc-dev
)

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

ensure_packages() {
  local missing=() p
  for p in "${RUNTIME_PACKAGES[@]}" "${GO_DEV_PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  ((INSTALL)) || die "missing Debian packages: ${missing[*]} (run without --no-install, or apt-get install them)"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "missing packages ${missing[*]}, not root and no sudo"
    sudo=(sudo)
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    log "apt-get install failed; running apt-get update and trying again"
    "${sudo[@]}" apt-get update >&2 || die "apt-get update failed"
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
      die "apt-get install ${missing[*]} failed"
  fi
}

ensure_packages
command -v go >/dev/null || die "go not found after installing golang-go"
[[ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]] ||
  die "/usr/share/gocode/src/go.etcd.io/etcd/clientv3 missing (golang-etcd-server-dev)"

# --- version and cache -------------------------------------------------------------------------

# golang-etcd-server-dev is Architecture: all, so its version is the source version (no +bN).
SRC_VERSION="$(dpkg-query -W -f='${Version}' golang-etcd-server-dev)"
SRC_VERSION="${SRC_VERSION#*:}"   # drop an epoch
SRC_VERSION="${SRC_VERSION%%+b*}" # and a binNMU suffix, should there be one
UPSTREAM_VERSION="${SRC_VERSION%-*}"
case "$UPSTREAM_VERSION" in
  3.4.*) ;;
  *) log "warning: golang-etcd-server-dev is $SRC_VERSION, not 3.4.x; tools/benchmark may not build" ;;
esac

BUILD_DIR="$CACHE_DIR/etcd-benchmark-$SRC_VERSION"
BIN="$BUILD_DIR/benchmark"
if ((!REBUILD)) && [[ -x "$BIN" ]] && "$BIN" --help >/dev/null 2>&1; then
  log "using cached $BIN"
  echo "$BIN"
  exit 0
fi
mkdir -p "$BUILD_DIR" || die "cannot create $BUILD_DIR"

# --- source ------------------------------------------------------------------------------------

fetch() { # URL FILE
  curl -fsSL --retry 3 -m 300 -o "$2.part" "$1" && mv -f "$2.part" "$2"
}

DSC="$BUILD_DIR/etcd_$SRC_VERSION.dsc"
if [[ ! -s "$DSC" ]]; then
  resolve_mirror
  log "downloading $MIRROR/pool/main/e/etcd/etcd_$SRC_VERSION.dsc"
  fetch "$MIRROR/pool/main/e/etcd/etcd_$SRC_VERSION.dsc" "$DSC" ||
    die "cannot download etcd_$SRC_VERSION.dsc from $MIRROR (if that archive no longer has version $SRC_VERSION, give an archive snapshot mirror of the Debian archive that does with --mirror=URL)"
fi
# The Checksums-Sha256 line of the .orig.tar.* file: " <sha256> <size> <name>".
read -r ORIG_SHA ORIG_SIZE ORIG_NAME < <(
  awk '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 ~ /\.orig\.tar\./ { print $1, $2, $3; exit }' "$DSC"
) || true
[[ -n "${ORIG_NAME:-}" ]] || die "no .orig.tar.* in the Checksums-Sha256 of $DSC"
TARBALL="$BUILD_DIR/$ORIG_NAME"
if [[ ! -s "$TARBALL" ]] || [[ "$(sha256sum "$TARBALL" | awk '{ print $1 }')" != "$ORIG_SHA" ]]; then
  resolve_mirror
  log "downloading $ORIG_NAME ($ORIG_SIZE bytes) from $MIRROR"
  fetch "$MIRROR/pool/main/e/etcd/$ORIG_NAME" "$TARBALL" || die "cannot download $ORIG_NAME from $MIRROR"
fi
got="$(sha256sum "$TARBALL" | awk '{ print $1 }')"
[[ "$got" == "$ORIG_SHA" ]] || die "$TARBALL: sha256 $got, but the .dsc says $ORIG_SHA"

# --- build -------------------------------------------------------------------------------------

GOPATH_DIR="$BUILD_DIR/gopath"
PKG_DIR="$GOPATH_DIR/src/go.etcd.io/etcd/tools/benchmark"
rm -rf -- "$GOPATH_DIR"
mkdir -p "$GOPATH_DIR/src/go.etcd.io/etcd/tools"
UNPACK="$BUILD_DIR/unpack"
rm -rf -- "$UNPACK"
mkdir -p "$UNPACK"
tar -xzf "$TARBALL" -C "$UNPACK" --wildcards '*/tools/benchmark/*' || die "cannot unpack tools/benchmark from $TARBALL"
src="$(find "$UNPACK" -maxdepth 3 -type d -path '*/tools/benchmark' | head -n 1)"
[[ -n "$src" && -f "$src/main.go" ]] || die "no tools/benchmark/main.go in $TARBALL"
mv "$src" "$PKG_DIR"
rm -rf -- "$UNPACK"

log "building tools/benchmark of etcd $UPSTREAM_VERSION with $(go version) (GOPATH mode)"
(
  cd "$PKG_DIR"
  # GOPATH mode: our private tree first (only tools/benchmark), then Debian's gocode, which
  # holds go.etcd.io/etcd/{clientv3,pkg/report,...} and every third-party package.
  export GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$GOPATH_DIR:/usr/share/gocode" \
    GOCACHE="$BUILD_DIR/gocache"
  go build -o "$BIN.new" .
) >&2 || die "go build of tools/benchmark failed (output above)"
mv -f "$BIN.new" "$BIN"
"$BIN" --help >/dev/null 2>&1 || die "$BIN does not run"
printf 'etcd %s tools/benchmark, built %s with %s from %s (sha256 %s)\n' "$SRC_VERSION" \
  "$(date -u +%FT%TZ)" "$(go version)" "$ORIG_NAME" "$ORIG_SHA" >"$BUILD_DIR/BUILD_INFO"
log "built $BIN"
echo "$BIN"
