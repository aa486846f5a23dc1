# shellcheck shell=bash
# shellcheck disable=SC2034  # sets globals that start-gateway.sh and credentials.sh read
# Settings, credentials and config rendering for start-gateway.sh (and the image build).
# Sourced, never executed; defines functions and tables only.

# Allowed values of the enum-like settings (lower case). Data, not branches.
declare -gA IBGW_ENUMS=(
	[TRADING_MODE]="live paper"
	[EXISTING_SESSION_DETECTED_ACTION]="primaryoverride primary secondary manual"
	[TWS_ACCEPT_INCOMING]="reject accept manual"
	[READ_ONLY_API]="yes no"
	[BYPASS_WARNING]="yes no"
	[RELOGIN_AFTER_TWOFA_TIMEOUT]="yes no"
	[TWOFA_TIMEOUT_ACTION]="restart exit"
	[ALLOW_BLIND_TRADING]="yes no"
)

# Defaults; READ_ONLY_API's depends on the trading mode (see ibgw_resolve_settings).
# primaryoverride: when a new revision logs in while the old one still runs, the new
# session wins and the old one exits (see gateway-image/README.md, "Two sessions").
declare -gA IBGW_DEFAULTS=(
	[TRADING_MODE]=paper
	[EXISTING_SESSION_DETECTED_ACTION]=primaryoverride
	[TWS_ACCEPT_INCOMING]=reject
	[BYPASS_WARNING]=yes
	[RELOGIN_AFTER_TWOFA_TIMEOUT]=yes
	[TWOFA_TIMEOUT_ACTION]=restart
	[ALLOW_BLIND_TRADING]=no
	[AUTO_RESTART_TIME]="11:59 PM"
	[TIME_ZONE]=America/New_York
	[TWOFA_TIMEOUT]=180
	[IBC_COMMAND_SERVER_PORT]=7462
)

# Older names users of the earlier system set, mapped to ours (ours win when both are set).
declare -gA IBGW_ALIASES=(
	[IBC_INI]=ibcIni
	[IBC_PATH]=ibcPath
	[TWS_PATH]=twsPath
	[TWS_SETTINGS_PATH]=twsSettingsPath
	[TWS_VERSION]=TWS_MAJOR_VRSN
	[IB_PORT]=TWS_PORT
	[IBC_COMMAND_SERVER_PORT]=COMMAND_SERVER_PORT
	[TWS_COLD_RESTART]=COLD_RESTART_TIME
)

# Credential sources: name -> the variables that make it up. Exactly one may be set.
declare -gA IBGW_CRED_SOURCES=(
	[IB_CREDENTIALS_JSON]="IB_CREDENTIALS_JSON"
	[IB_USERNAME/IB_PASSWORD]="IB_USERNAME IB_PASSWORD"
	[TWS_USERID/TWS_PASSWORD]="TWS_USERID TWS_PASSWORD"
)

# ibgw_major_version VERSION : print IBC's directory form of a gateway version:
# 981 / 981.3c -> 981, 10.30.1t / 10.37.1l / 10.30 -> 1030 / 1037, 1030 -> 1030.
ibgw_major_version() {
	local v=$1
	if [[ $v =~ ^[0-9]{3,4}$ ]]; then
		printf '%s\n' "$v"
	elif [[ $v =~ ^(9[0-9]{2})(\.[0-9]+[a-z]?)*$ ]]; then
		printf '%s\n' "${BASH_REMATCH[1]}"
	elif [[ $v =~ ^([1-9][0-9])\.([0-9]{1,2})(\.[0-9]+[a-z]?)*$ ]]; then
		printf '%s%02d\n' "${BASH_REMATCH[1]}" "$((10#${BASH_REMATCH[2]}))"
	else
		return 1
	fi
}

# ibgw_version_from_log FILE : print the major version named in an installer log, e.g. on
# lines "IB Gateway 981", "IB Gateway 10.30.1t", ".../ibgateway/1037/jars".
ibgw_version_from_log() {
	local line re='[Ii][Bb][ _-]?[Gg]ateway[ /_-]+([0-9]+(\.[0-9]+)*[a-z]?)'
	[[ -r $1 ]] || return 1
	while IFS= read -r line || [[ -n $line ]]; do
		if [[ $line =~ $re ]] && ibgw_major_version "${BASH_REMATCH[1]}"; then
			return 0
		fi
	done <"$1"
	return 1
}

# ibgw_setting NAME : set NAME from itself, its older alias, or its default (in that order).
ibgw_setting() {
	local name=$1 alias=${IBGW_ALIASES[$1]:-}
	if [[ -z ${!name:-} && -n $alias && -n ${!alias:-} ]]; then
		printf -v "$name" '%s' "${!alias}"
	fi
	if [[ -z ${!name:-} ]]; then
		printf -v "$name" '%s' "${IBGW_DEFAULTS[$name]:-}"
	fi
}

# ibgw_enum NAME : normalise NAME to lower case (true/false -> yes/no) and check it.
ibgw_enum() {
	local name=$1 value allowed=" ${IBGW_ENUMS[$1]} "
	ibgw_setting "$name"
	value=${!name,,}
	case $value in true) value=yes ;; false) value=no ;; esac
	if [[ $allowed != *" $value "* ]]; then
		die "$name must be one of:${allowed% } (got '${!name}')"
	fi
	printf -v "$name" '%s' "$value"
}

# ibgw_match NAME REGEX HINT : fail unless NAME is empty or matches REGEX.
ibgw_match() {
	if [[ -n ${!1:-} && ! ${!1} =~ $2 ]]; then
		die "$1 must be $3 (got '${!1}')"
	fi
}

ibgw_resolve_paths() {
	local name
	for name in IBC_INI IBC_PATH TWS_PATH TWS_SETTINGS_PATH TWS_VERSION; do
		ibgw_setting "$name"
	done
	IBC_PATH=${IBC_PATH:-/opt/ibc}
	TWS_PATH=${TWS_PATH:-$HOME/Jts}
	TWS_SETTINGS_PATH=${TWS_SETTINGS_PATH:-$TWS_PATH}
	IBC_INI=${IBC_INI:-$HOME/ibc/config.ini}
	LOG_PATH=${LOG_PATH:-}
	JAVA_PATH=${JAVA_PATH:-${javaPath:-}}
	if [[ -z $JAVA_PATH && -n ${JAVA_PATH_ROOT:-} ]]; then
		# The earlier system named the folder holding one JRE folder; IBC wants .../bin.
		local jres=("$JAVA_PATH_ROOT"/*/bin)
		[[ -d ${jres[0]} ]] || die "JAVA_PATH_ROOT has no <jre>/bin folder: $JAVA_PATH_ROOT"
		JAVA_PATH=${jres[0]}
	fi
}

ibgw_resolve_version() {
	local major
	if [[ -n $TWS_VERSION ]]; then
		major=$(ibgw_major_version "$TWS_VERSION") ||
			die "TWS_VERSION must look like 981, 1030 or 10.30.1t (got '$TWS_VERSION')"
	elif [[ -n ${TWS_INSTALL_LOG:-} ]]; then
		major=$(ibgw_version_from_log "$TWS_INSTALL_LOG") ||
			die "TWS_VERSION is unset and no gateway version was found in TWS_INSTALL_LOG ($TWS_INSTALL_LOG)"
	else
		die "set TWS_VERSION (e.g. 10.30.1t) or TWS_INSTALL_LOG"
	fi
	TWS_MAJOR_VRSN=$major
	GATEWAY_DIR=$TWS_PATH/ibgateway/$major
	[[ -d $GATEWAY_DIR/jars ]] || die "IB Gateway $major is not installed: no $GATEWAY_DIR/jars"
}

ibgw_resolve_port() {
	local default=4002
	[[ $TRADING_MODE == live ]] && default=4001
	ibgw_setting IB_PORT
	[[ ${IB_PORT:-0} == 0 ]] && IB_PORT=$default
	ibgw_match IB_PORT '^[1-9][0-9]{0,4}$' 'a TCP port number'
	((IB_PORT <= 65535)) || die "IB_PORT must be a TCP port number (got '$IB_PORT')"
	# Leave the gateway's own per-mode default alone unless another port was asked for.
	API_PORT_OVERRIDE=
	[[ $IB_PORT == "$default" ]] || API_PORT_OVERRIDE=$IB_PORT
}

# ibgw_resolve_settings : validate every non-secret setting, failing fast with a clear message.
ibgw_resolve_settings() {
	local name
	for name in "${!IBGW_ENUMS[@]}"; do
		[[ $name == READ_ONLY_API ]] || ibgw_enum "$name"
	done
	# A live deployment is read-only unless the owner opts in to order placement.
	IBGW_DEFAULTS[READ_ONLY_API]=no
	[[ $TRADING_MODE == live ]] && IBGW_DEFAULTS[READ_ONLY_API]=yes
	ibgw_enum READ_ONLY_API
	for name in AUTO_RESTART_TIME TIME_ZONE TWOFA_TIMEOUT IBC_COMMAND_SERVER_PORT TWS_COLD_RESTART; do
		ibgw_setting "$name"
	done
	ibgw_match AUTO_RESTART_TIME '^(0[1-9]|1[0-2]):[0-5][0-9] (AM|PM)$' 'hh:mm AM|PM, e.g. 11:59 PM'
	ibgw_match TWS_COLD_RESTART '^([01][0-9]|2[0-3]):[0-5][0-9]$' 'hh:mm (24 h), e.g. 07:05'
	ibgw_match TWOFA_TIMEOUT '^[0-9]+$' 'a number of seconds'
	ibgw_match TWOFA_EXIT_INTERVAL '^[0-9]+$' 'a number of seconds'
	ibgw_match IBC_COMMAND_SERVER_PORT '^[0-9]{1,5}$' 'a TCP port number (0 = off)'
	ibgw_match JAVA_HEAP_SIZE '^[1-9][0-9]*[mMgG]?$' 'a heap size in MB, or with m/g, e.g. 768 or 1g'
	ibgw_match TWS_MASTER_CLIENT_ID '^[0-9]+$' 'a client id'
	ibgw_resolve_paths
	ibgw_resolve_version
	ibgw_resolve_port
}
