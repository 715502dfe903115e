#!/usr/bin/env bash
# The production examples of docs/deployment-guide.md stay valid:
#   - docs/examples/amaters.toml passes `amaters-server validate-config` (which does not look at
#     the TLS files or bind the addresses, so the example's paths and hosts need not exist here);
#   - docs/examples/amaters-server.service starts and validates that file with flags the server
#     accepts, reloads with SIGHUP, gives a graceful stop more time than shutdown_timeout_ms, and
#     lets the service write the configured data directory;
#   - `systemd-analyze verify` finds no error in the unit (when systemd-analyze is installed).
set -uo pipefail

RUNFILES="${TEST_SRCDIR:?run me with bazel test}/${TEST_WORKSPACE:-amaters}"
SERVER="$RUNFILES/server/amaters-server"
TOML="$RUNFILES/docs/examples/amaters.toml"
UNIT="$RUNFILES/docs/examples/amaters-server.service"
TMP="${TEST_TMPDIR:-$(mktemp -d)}"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# --- amaters.toml --------------------------------------------------------------------------------

out="$("$SERVER" validate-config --config="$TOML" 2>&1)" || fail "validate-config rejects $TOML: $out"
[[ "$out" == "configuration is valid"* ]] || fail "validate-config printed: $out"
echo "ok: validate-config accepts docs/examples/amaters.toml"

toml_value() {  # toml_value SECTION KEY: the raw value of KEY in [SECTION]
  awk -v sec="[$1]" -v key="$2" '
    /^\[/ { in_sec = ($0 == sec) }
    in_sec && $1 == key && $2 == "=" { sub(/^[^=]*= */, ""); sub(/ *#.*$/, ""); print; exit }
  ' "$TOML"
}
grep -q '^sync_mode = "always"' "$TOML" || fail "the production example must use sync_mode = \"always\""
[[ "$(toml_value network tls_enabled)" == true ]] || fail "the production example must enable TLS"
data_dir="$(toml_value server data_dir | tr -d '"')"
shutdown_ms="$(toml_value server shutdown_timeout_ms)"
[[ -n "$data_dir" && -n "$shutdown_ms" ]] || fail "cannot read data_dir / shutdown_timeout_ms from $TOML"
metrics="$(toml_value metrics bind_address | tr -d '"')"
[[ "$metrics" != 0.0.0.0:* && "$metrics" != "[::]:"* ]] || fail "metrics bound to a wildcard address"

# --- amaters-server.service ----------------------------------------------------------------------

unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }

exec_start="$(unit_value ExecStart)"
[[ "$exec_start" == "/usr/local/bin/amaters-server start --config=/etc/amaters/amaters.toml" ]] ||
  fail "unexpected ExecStart=$exec_start"
# The unit's arguments, given to the real binary with the example file in place of /etc/...
read -r -a args <<<"${exec_start#/usr/local/bin/amaters-server }"
args=("${args[@]/--config=\/etc\/amaters\/amaters.toml/--config=$TOML}")
args[0]=validate-config  # same flags, but check instead of start
out="$("$SERVER" "${args[@]}" 2>&1)" || fail "ExecStart's flags are rejected: $out"
pre="$(unit_value ExecStartPre)"
read -r -a args <<<"${pre#/usr/local/bin/amaters-server }"
args=("${args[@]/--config=\/etc\/amaters\/amaters.toml/--config=$TOML}")
out="$("$SERVER" "${args[@]}" 2>&1)" || fail "ExecStartPre's command fails: $out"

[[ "$(unit_value Type)" == simple ]] || fail "Type must be simple"
[[ "$(unit_value ExecReload)" == '/bin/kill -HUP $MAINPID' ]] || fail "ExecReload must send SIGHUP"
[[ "$(unit_value KillSignal)" == SIGTERM ]] || fail "KillSignal must be SIGTERM"
[[ "$(unit_value Restart)" == on-failure ]] || fail "Restart must be on-failure"
[[ -n "$(unit_value User)" && "$(unit_value User)" != root ]] || fail "the unit needs a dedicated User"
[[ -n "$(unit_value LimitNOFILE)" ]] || fail "the unit sets no LimitNOFILE"
[[ "$(unit_value ProtectSystem)" == strict ]] || fail "ProtectSystem must be strict"
[[ " $(unit_value ReadWritePaths) " == *" $data_dir "* ]] ||
  fail "ReadWritePaths=$(unit_value ReadWritePaths) does not include data_dir $data_dir"
stop_s="$(unit_value TimeoutStopSec)"
stop_s="${stop_s%s}"
[[ "$stop_s" =~ ^[0-9]+$ ]] || fail "TimeoutStopSec=$stop_s is not whole seconds"
((stop_s * 1000 > shutdown_ms + 5000)) ||
  fail "TimeoutStopSec=$stop_s s leaves too little room over shutdown_timeout_ms=$shutdown_ms"
echo "ok: docs/examples/amaters-server.service matches the server's flags and the example config"

if command -v systemd-analyze >/dev/null; then
  # With the binary path pointed at the real binary, so that verify can check it is executable.
  sed "s#/usr/local/bin/amaters-server#$SERVER#g" "$UNIT" >"$TMP/amaters-server.service"
  if ! out="$(systemd-analyze verify "$TMP/amaters-server.service" 2>&1)"; then
    # Only complaints about the unit itself count; a host without systemd running may have others.
    if grep -q "amaters-server.service" <<<"$out"; then
      fail "systemd-analyze verify: $out"
    fi
    echo "note: systemd-analyze verify could not run here: $out"
  elif [[ -n "$out" ]] && grep -q "amaters-server.service:" <<<"$out"; then
    fail "systemd-analyze verify warns: $out"
  else
    echo "ok: systemd-analyze verify"
  fi
fi
echo PASS
