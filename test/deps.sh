#!/usr/bin/env bash
# Install every Debian package marketdata needs (idempotent), then the npm
# packages of package-lock.json (npm ci: the dashboard's chart library and
# the browser test's driver) into node_modules.
#   test/deps.sh               install (apt-get update + install)
#   test/deps.sh --if-missing  do nothing when all are installed already
set -euo pipefail

packages=(
	build-essential
	postgresql-15 postgresql-server-dev-15 postgresql-contrib
	libcurl4-openssl-dev libhiredis-dev librdkafka-dev libjwt-dev libssl-dev
	redis-server kore kcat curl wrk haproxy openssl libjansson-dev
	libipc-run-perl libprotocol-websocket-perl chromium
	libmicrohttpd-dev bc
	clang zzuf
	docker-compose python3-yaml
	podman runc mmdebstrap netavark aardvark-dns uidmap slirp4netns iptables
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# make docker-check installs its Dockerfile linter with npm: Debian's npm
# unless some npm (a Node.js install of its own) is there already
command -v npm >/dev/null || missing+=(npm)

top="$(cd "$(dirname "$0")/.." && pwd)"
npm_deps() {
	# node_modules older than the lock file (or absent): install it again
	if [ ! -f "$top/node_modules/.package-lock.json" ] ||
	   [ "$top/package-lock.json" -nt "$top/node_modules/.package-lock.json" ]; then
		echo "deps: npm ci"
		(cd "$top" && npm ci --no-audit --no-fund)
	fi
}

if [ ${#missing[@]} -eq 0 ]; then
	[ "${1:-}" = "--if-missing" ] || echo "deps: all ${#packages[@]} packages are installed"
	npm_deps
	exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps: run as root (or install sudo)" >&2; exit 1; }
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts a system cluster and Redis on install; ours run privately.
npm_deps
