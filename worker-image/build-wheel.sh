#!/usr/bin/env bash
# Build the worker's production wheel into OUT_DIR (default: dist/ at the repository root).
# The wheel carries the worker package only: ibsim and the local-stack tooling (worker/devstack)
# are development tools, so the wheel is built from a copy of the sources without them and the
# image can neither import nor run them. Their dependencies are extras (setup.cfg), not installed.
#   worker-image/build-wheel.sh [OUT_DIR]
# Environment: PYTHON (default python3, with pip); WHEEL_BUILD_FLAGS, extra `pip wheel` flags
# (the tests pass --no-build-isolation to build offline with the setuptools already installed).
set -Eeuo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/dist}
src=$(mktemp -d)
trap 'rm -rf -- "$src"' EXIT

cp -R -- "$repo/pyproject.toml" "$repo/setup.cfg" "$repo/README.md" "$repo/worker" "$src/"
rm -rf -- "$src/worker/devstack"
find "$src" -name __pycache__ -prune -exec rm -rf {} +
# The ibsim console script would name a module the wheel does not carry.
sed -i '/^[[:space:]]*ibsim[[:space:]]*=[[:space:]]*ibsim\.cli:main[[:space:]]*$/d' "$src/setup.cfg"
if grep -q 'ibsim\.cli' "$src/setup.cfg"; then
	echo "build-wheel.sh: setup.cfg still names ibsim.cli: update the entry-point filter" >&2
	exit 65
fi

mkdir -p -- "$out"
rm -f -- "$out"/*.whl
# shellcheck disable=SC2086  # WHEEL_BUILD_FLAGS is a list of flags
"${PYTHON:-python3}" -m pip wheel --quiet --no-deps ${WHEEL_BUILD_FLAGS:-} --wheel-dir "$out" "$src"
set -- "$out"/*.whl
[[ $# -eq 1 && -f $1 ]] || { echo "build-wheel.sh: expected one wheel in $out" >&2; exit 70; }
echo "$1"
