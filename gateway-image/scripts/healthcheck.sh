#!/usr/bin/env bash
# Health check for IB Gateway: the API port accepts a connection AND answers the API
# handshake. A port that accepts but never answers (gateway starting, dialog open) is
# unhealthy. Exit 0 healthy, 1 unhealthy, with the reason on stderr.
#
# Handshake (TWS API, client side): "API\0", then one frame = 4-byte big-endian length +
# "v<min>..<max>". The gateway answers with one frame of two NUL-terminated fields: its
# server version and its connection time. Then we hang up without starting the API, so no
# client id is taken.
#
# Environment: IB_HOST (127.0.0.1), IB_PORT (or TWS_PORT; default 4002 paper / 4001 live
# from TRADING_MODE), HEALTHCHECK_TIMEOUT (seconds, default 5).
set -Euo pipefail
export LC_ALL=C # one character = one byte while decoding the reply

MIN_VERSION=157
MAX_VERSION=178
host=${IB_HOST:-127.0.0.1}
timeout=${HEALTHCHECK_TIMEOUT:-5}
bytes=()

unhealthy() {
	printf 'gateway-healthcheck: unhealthy: %s\n' "$1" >&2
	exit 1
}

default_port() {
	case ${TRADING_MODE:-paper} in
	live | LIVE) echo 4001 ;;
	*) echo 4002 ;;
	esac
}

# frame PAYLOAD : print PAYLOAD with its 4-byte length prefix as printf %b escapes.
frame() {
	local n=${#1}
	printf '\\x%02x\\x%02x\\x%02x\\x%02x%s' \
		$((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)) "$1"
}

# read_bytes COUNT : append reply bytes (as numbers) to `bytes` until it holds COUNT.
# `read -d ''` stops at each NUL, so every successful read is a token followed by a 0 byte.
read_bytes() {
	local token status i code
	while ((${#bytes[@]} < $1)); do
		status=0
		IFS= read -r -d '' -t "$timeout" -u "$fd" token || status=$?
		for ((i = 0; i < ${#token}; i++)); do
			printf -v code '%d' "'${token:i:1}"
			bytes+=($((code & 255)))
		done
		((status == 0)) || return 1
		bytes+=(0)
	done
}

# fields FROM COUNT : print bytes[FROM..FROM+COUNT) as lines, one per NUL-terminated field.
fields() {
	local i hex char out=''
	for ((i = $1; i < $1 + $2; i++)); do
		if ((bytes[i] == 0)); then
			printf '%s\n' "$out"
			out=''
		else
			printf -v hex '%02x' "${bytes[i]}"
			printf -v char '%b' "\\x$hex"
			out+=$char
		fi
	done
}

main() {
	local port=${IB_PORT:-${TWS_PORT:-}} length reply
	[[ -n $port && $port != 0 ]] || port=$(default_port)
	# Braces: on a bare exec the 2>/dev/null would stay in force for the whole script.
	{ exec {fd}<>"/dev/tcp/$host/$port"; } 2>/dev/null ||
		unhealthy "API port $host:$port is not accepting connections"
	printf '%b' "API\\0$(frame "v$MIN_VERSION..$MAX_VERSION")" >&"$fd" ||
		unhealthy "could not send the API handshake to $host:$port"
	read_bytes 4 || unhealthy "no handshake reply from $host:$port within ${timeout}s"
	length=$((bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3]))
	((length >= 4 && length <= 1024)) || unhealthy "not an API handshake reply (frame length $length)"
	read_bytes $((4 + length)) || unhealthy "incomplete handshake reply from $host:$port"
	((bytes[3 + length] == 0)) || unhealthy "handshake reply does not end with a field terminator"
	mapfile -t reply < <(fields 4 "$length")
	((${#reply[@]} == 2)) || unhealthy "handshake reply has ${#reply[@]} fields, expected 2"
	if [[ ! ${reply[0]} =~ ^[0-9]{1,4}$ ]] || ((reply[0] < MIN_VERSION || reply[0] > MAX_VERSION)); then
		unhealthy "handshake reply names server version '${reply[0]}'"
	fi
	exec {fd}>&-
	printf 'gateway-healthcheck: healthy: %s:%s server version %s, time %s\n' \
		"$host" "$port" "${reply[0]}" "${reply[1]}"
}

main "$@"
