#!/usr/bin/env bash
# Install every Debian package marketdata needs (idempotent).
#   test/deps.sh               install (apt-get update + install)
#   test/deps.sh --if-missing  do nothing when all are installed already
set -euo pipefail

packages=(
	build-essential
	postgresql-15 postgresql-server-dev-15 postgresql-contrib
	libcurl4-openssl-dev libhiredis-dev librdkafka-dev libjwt-dev libssl-dev
	redis-server kore kcat curl wrk haproxy openssl libjansson-dev
	libipc-run-perl
	libmicrohttpd-dev bc
	docker-compose python3-yaml
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# make docker-check installs its Dockerfile linter with npm: Debian's npm
# unless some npm (a Node.js install of its own) is there already
command -v npm >/dev/null || missing+=(npm)

if [ "${1:-}" = "--if-missing" ] && [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#packages[@]} packages are installed"
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
