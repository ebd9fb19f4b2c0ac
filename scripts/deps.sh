#!/usr/bin/env bash
# deps.sh PACKAGE...: make sure the named Debian packages are installed.
#
# Idempotent and quiet: packages already installed are left alone, apt-get
# update runs at most once, and only when something is missing. As root it
# installs what is missing; as anyone else it prints the command to run and
# fails, so that a developer is told exactly what to do next.
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 PACKAGE..." >&2
	exit 2
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
	# Not a Debian-family system: we cannot check, so say what the tests need
	# and let them decide (the harness skips or fails with its own hint).
	echo "deps: no dpkg-query here; make sure these are installed: $*" >&2
	exit 0
fi

missing=()
for pkg in "$@"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing+=("$pkg")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
