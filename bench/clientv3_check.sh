#!/usr/bin/env bash
# etcd's Go client against a three-node amaters cluster: clientv3/concurrency Mutex and Election
# contention and a watch that survives a leader kill (bench/clientv3_check/main.go;
# docs/leases.md "With etcd's Go client").
#
#   bench/clientv3_check.sh [--amaters-bin=PATH] [--base-port=P] [--keep]
set -uo pipefail

readonly PROG="clientv3_check"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO

usage() {
  cat <<'EOF'
usage: bench/clientv3_check.sh [FLAGS]

Builds bench/clientv3_check/main.go with Debian's Go in GOPATH mode against Debian's
golang-etcd-server-dev (etcd 3.4's clientv3; GO111MODULE=off, GOPROXY=off, nothing downloaded),
starts three amaters-server processes on 127.0.0.1 with their data in a temporary directory,
and runs the checks (see the comment at the top of main.go):
  mutex     4 contenders x 25 rounds of concurrency.Mutex around a get-and-put counter
  election  3 candidates of concurrency.Election, one leader at a time, each leads once
  watch     a prefix watch from a past revision while 200 puts go on and the leader is
            SIGKILLed half way: every put once, in revision order, no gap
Prints the program's lines; its last one is "clientv3_check: result=pass|fail".

Flags:
  --amaters-bin=PATH  use this amaters-server (default: ./bazelw build //server:amaters-server)
  --base-port=P       ports P..P+22 on 127.0.0.1 (default 24790): member i uses P+10*(i-1)
                      for clients, +1 for peers, +2 for the admin HTTP listener
  --keep              keep the run's directory (configs, data, logs)
  --help              this text

Needs the Debian packages golang-go and golang-etcd-server-dev (installed by
bench/etcd_benchmark_setup.sh, which bench/compare_etcd.sh runs) and curl.
Exit status: 0 when every check passed, 1 otherwise, 2 for a usage error.
EOF
}

log() { echo "$PROG: $*" >&2; }
die() {
  echo "$PROG: error: $*" >&2
  exit 1
}

AMATERS_BIN=""
BASE_PORT=24790
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --amaters-bin=*) AMATERS_BIN="${arg#*=}" ;;
    --base-port=*) BASE_PORT="${arg#*=}" ;;
    --keep) KEEP=1 ;;
    --help | -h) usage; exit 0 ;;
    *) echo "$PROG: unknown flag $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$BASE_PORT" =~ ^[0-9]+$ ]] && ((BASE_PORT > 0 && BASE_PORT < 65500)) ||
  { echo "$PROG: --base-port must be a port number" >&2; exit 2; }

command -v go >/dev/null || die "go not found (apt-get install golang-go)"
[[ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3/concurrency ]] ||
  die "etcd's clientv3 sources are missing (apt-get install golang-etcd-server-dev)"
command -v curl >/dev/null || die "curl not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/clientv3_check.XXXXXX")" || die "mktemp failed"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if ((KEEP)); then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [[ -z "$AMATERS_BIN" ]]; then
  log "building amaters-server (./bazelw build //server:amaters-server)"
  (cd "$REPO" && ./bazelw build //server:amaters-server) >"$WORK/bazel-build.log" 2>&1 ||
    die "build failed: $(tail -n 5 "$WORK/bazel-build.log")"
  AMATERS_BIN="$(cd "$REPO" && ./bazelw info bazel-bin 2>/dev/null)/server/amaters-server"
fi
[[ -x "$AMATERS_BIN" ]] || die "$AMATERS_BIN is not executable"

log "building bench/clientv3_check (Go, GOPATH mode, Debian's golang-*-dev)"
mkdir -p "$WORK/gopath/src/clientv3_check" "$WORK/gocache"
cp "$REPO/bench/clientv3_check/main.go" "$WORK/gopath/src/clientv3_check/"
(cd "$WORK/gopath/src/clientv3_check" &&
  GO111MODULE=off GOPROXY=off GOFLAGS= GOCACHE="$WORK/gocache" \
    GOPATH="$WORK/gopath:/usr/share/gocode" go build -o "$WORK/clientv3_check" .) \
  >"$WORK/go-build.log" 2>&1 || die "go build failed: $(tail -n 5 "$WORK/go-build.log")"

client_port() { echo $((BASE_PORT + ($1 - 1) * 10)); }
peer_port() { echo $((BASE_PORT + ($1 - 1) * 10 + 1)); }
admin_port() { echo $((BASE_PORT + ($1 - 1) * 10 + 2)); }

peers=""
endpoints=""
for i in 1 2 3; do
  peers+="${peers:+, }\"$i:127.0.0.1:$(peer_port "$i")\""
  endpoints+="${endpoints:+,}127.0.0.1:$(client_port "$i")"
done
pid_map=""
for i in 1 2 3; do
  mkdir -p "$WORK/node$i"
  cat >"$WORK/node$i.toml" <<EOF
[server]
bind_address = "127.0.0.1:$(client_port "$i")"
data_dir = "$WORK/node$i"

[cluster]
node_id = $i
peers = [$peers]

[metrics]
bind_address = "127.0.0.1:$(admin_port "$i")"
EOF
  setsid "$AMATERS_BIN" start --config="$WORK/node$i.toml" </dev/null >"$WORK/node$i.log" 2>&1 &
  PIDS+=($!)
  pid_map+="${pid_map:+,}$i:$!"
done
deadline=$((SECONDS + 60))
while :; do
  ready=0
  for i in 1 2 3; do
    kill -0 "${PIDS[i - 1]}" 2>/dev/null || die "node $i exited: $(tail -n 5 "$WORK/node$i.log")"
    [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$(admin_port "$i")/readyz")" == 200 ]] &&
      ready=$((ready + 1))
  done
  ((ready == 3)) && break
  ((SECONDS < deadline)) || die "cluster not ready after 60 s (--keep keeps the logs)"
  sleep 0.5
done
log "cluster ready on $endpoints; running the checks"
"$WORK/clientv3_check" -endpoints="$endpoints" -pids="$pid_map" 2>"$WORK/clientv3_check.stderr"
status=$?
((status == 0)) || log "failed; the client's stderr: $(tail -n 5 "$WORK/clientv3_check.stderr")"
exit "$status"
