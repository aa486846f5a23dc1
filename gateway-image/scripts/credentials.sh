# shellcheck shell=bash
# shellcheck disable=SC2034  # sets globals that start-gateway.sh reads
# Credentials and the IBC config file. Sourced, never executed; defines functions only.
#
# Rules kept here: a secret is only ever held in shell variables of this process, written to
# one file created mode 600, never passed as an argument to a program (argv is world-readable
# in /proc/*/cmdline), never echoed, and never traced: every function that touches one turns
# `set -x` off first and restores it after.

# ibgw_quiet / ibgw_loud : stop and restore xtrace around secret handling.
ibgw_quiet() {
	IBGW_XTRACE=
	if [[ $- == *x* ]]; then IBGW_XTRACE=1; fi
	set +x
}
ibgw_loud() {
	if [[ -n ${IBGW_XTRACE:-} ]]; then set -x; fi
}

# ibgw_read_var NAME : print NAME's value, or the content of the file NAME_FILE names.
# Both set is an error, as is an unreadable file. A trailing newline of a file is dropped.
ibgw_read_var() {
	local name=$1 file_var="$1_FILE"
	if [[ -n ${!name:-} && -n ${!file_var:-} ]]; then
		die "both $name and $file_var are set; set one"
	fi
	if [[ -n ${!file_var:-} ]]; then
		[[ -r ${!file_var} ]] || die "$file_var names an unreadable file: ${!file_var}"
		printf '%s' "$(<"${!file_var}")"
	else
		printf '%s' "${!name:-}"
	fi
}

# ibgw_source_is_set VARS... : true if any VAR or VAR_FILE is non-empty.
ibgw_source_is_set() {
	local var file_var
	for var in "$@"; do
		file_var="${var}_FILE"
		if [[ -n ${!var:-} || -n ${!file_var:-} ]]; then return 0; fi
	done
	return 1
}

# ibgw_credential_source : print the one credential source that is set, or fail.
ibgw_credential_source() {
	local name found=()
	for name in "${!IBGW_CRED_SOURCES[@]}"; do
		# shellcheck disable=SC2086  # the table holds space-separated variable names
		if ibgw_source_is_set ${IBGW_CRED_SOURCES[$name]}; then found+=("$name"); fi
	done
	if ((${#found[@]} == 0)); then
		die "no IB credentials: set IB_CREDENTIALS_JSON, IB_USERNAME/IB_PASSWORD or TWS_USERID/TWS_PASSWORD (or a *_FILE variant)"
	fi
	if ((${#found[@]} > 1)); then
		die "IB credentials are set in more than one way (${found[*]}); set exactly one"
	fi
	printf '%s' "${found[0]}"
}

# ibgw_json_field JSON FILTER : print a string field via jq, the JSON going in on stdin.
ibgw_json_field() {
	printf '%s' "$1" | jq -j "$2 | strings" 2>/dev/null
}

# ibgw_load_credentials : set IBGW_USER and IBGW_PASS from the one source that is set.
ibgw_load_credentials() {
	local source json
	source=$(ibgw_credential_source) || exit
	# Keep the values in this shell only: jq below must not inherit them.
	export -n IB_CREDENTIALS_JSON IB_USERNAME IB_PASSWORD TWS_USERID TWS_PASSWORD
	case $source in
	IB_CREDENTIALS_JSON)
		json=$(ibgw_read_var IB_CREDENTIALS_JSON) || exit
		IBGW_USER=$(ibgw_json_field "$json" '.username // .userid') || IBGW_USER=
		IBGW_PASS=$(ibgw_json_field "$json" '.password') || IBGW_PASS=
		json=
		;;
	IB_USERNAME/IB_PASSWORD)
		IBGW_USER=$(ibgw_read_var IB_USERNAME) || exit
		IBGW_PASS=$(ibgw_read_var IB_PASSWORD) || exit
		;;
	*)
		IBGW_USER=$(ibgw_read_var TWS_USERID) || exit
		IBGW_PASS=$(ibgw_read_var TWS_PASSWORD) || exit
		;;
	esac
	if [[ -z $IBGW_USER || -z $IBGW_PASS ]]; then
		die "$source must give both a username and a password (JSON keys: username or userid, and password)"
	fi
}

# ibgw_forget_credentials : remove every credential variable, so no child inherits one.
ibgw_forget_credentials() {
	local var
	for var in IB_CREDENTIALS_JSON IB_USERNAME IB_PASSWORD TWS_USERID TWS_PASSWORD; do
		unset "$var" "${var}_FILE"
	done
	unset IBGW_USER IBGW_PASS
}

# ibgw_props_escape VALUE : print VALUE escaped for java.util.Properties, which IBC uses to
# read config.ini: backslashes doubled, a leading blank kept, non-ASCII as \uXXXX (the file
# is read as ISO-8859-1). Control characters cannot be represented and are refused.
ibgw_props_escape() {
	local value=$1 out='' i c code
	if [[ $value == *[[:cntrl:]]* ]]; then
		return 1
	fi
	local LC_ALL=C.UTF-8
	for ((i = 0; i < ${#value}; i++)); do
		c=${value:i:1}
		printf -v code '%d' "'$c"
		if ((code > 0xFFFF)); then
			code=$((code - 0x10000))
			printf -v c '\\u%04X\\u%04X' $((0xD800 + (code >> 10))) $((0xDC00 + (code & 0x3FF)))
		elif ((code > 126)); then
			printf -v c '\\u%04X' "$code"
		elif [[ $c == "\\" ]]; then
			c="\\\\"
		elif ((i == 0)) && [[ $c == [[:blank:]] ]]; then
			c="\\$c"
		fi
		out+=$c
	done
	printf '%s' "$out"
}

# ibgw_render TEMPLATE OUT NAME... : write TEMPLATE to OUT, replacing each ${NAME} by the
# Properties-escaped value of the variable NAME. Only the listed names are replaced; any
# other ${...} left in the template is an error. Values are escaped (and refused) before OUT
# is opened, and never re-expanded.
ibgw_render() {
	local template=$1 out=$2 line rest result name token
	shift 2
	local -A value=()
	for name in "$@"; do
		value[$name]=$(ibgw_props_escape "${!name:-}") ||
			die "the value of $name contains a control character"
	done
	while IFS= read -r line || [[ -n $line ]]; do
		rest=$line result=''
		while [[ $rest =~ \$\{([A-Za-z0-9_]+)\} ]]; do
			token=${BASH_REMATCH[0]} name=${BASH_REMATCH[1]}
			[[ -v value[$name] ]] || die "template $template uses an unknown variable $name"
			result+=${rest%%"$token"*}${value[$name]}
			rest=${rest#*"$token"}
		done
		printf '%s\n' "$result$rest"
	done <"$template" >"$out"
}

# ibgw_write_private TEMPLATE OUT NAME... : render into a file that is mode 600 from the
# moment it exists (umask 077, mktemp), then rename it over OUT atomically.
ibgw_write_private() {
	local template=$1 out=$2 dir tmp old_umask
	dir=$(dirname -- "$out")
	mkdir -p -- "$dir"
	old_umask=$(umask)
	umask 077
	tmp=$(mktemp "$dir/.config.XXXXXX")
	IBGW_PARTIAL_CONFIG=$tmp
	ibgw_render "$template" "$tmp" "${@:3}"
	umask "$old_umask"
	chmod 600 -- "$tmp"
	mv -f -- "$tmp" "$out"
	IBGW_PARTIAL_CONFIG=
}
