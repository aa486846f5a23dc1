#!/usr/bin/env bash
# Stub of IBC's launcher (scripts/ibcstart.sh): records its arguments, then runs java in
# the background and forwards SIGTERM/SIGINT to it, as the real launcher does.
set -uo pipefail
event() { printf '%s %s\n' "$*" "$$" >>"$STUB_EVENTS"; }
printf '%s\n' "$@" >"$STUB_DIR/ibcstart.args"
ini=''
for arg; do [[ $arg == --ibc-ini=* ]] && ini=${arg#--ibc-ini=}; done
stat -c '%a' "$ini" >"$STUB_DIR/ini.mode"
event ibcstart start
echo "IBC stub started"
java -cp IBC.jar ibcalpha.ibc.IbcGateway "$ini" &
pid=$!
trap 'event ibcstart term; kill -TERM "$pid"' TERM INT
status=0
wait "$pid" || status=$?
trap - TERM INT
if ((status > 128)) && kill -0 "$pid" 2>/dev/null; then
	status=0
	wait "$pid" || status=$?
fi
event ibcstart exit "$status"
exit "$status"
