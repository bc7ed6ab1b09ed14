#!/usr/bin/env bash
# docker/check.sh ("make docker-check"): checks docker/ without a Docker
# engine. Each check prints "ok - …" or "not ok - …"; the last line is
# "N passed, N failed" and the exit code is non-zero when any failed.
#
#   1. docker-compose config: compose.yaml is valid for the Compose file
#      format (Debian's docker-compose), with every env file and secret
#      of the stack made from its *.example, as a new user would.
#   2. the shape of the stack (docker/check_compose.py on the resolved
#      file): health checks, secrets, networks, the API on the replica.
#   3. every docker/*.Dockerfile parses and lints clean with
#      dockerfile-utils (npm; installed by this script into a cache
#      directory on first use, pinned).
#   4. the shell scripts copied into the images parse (bash -n / sh -n).
set -uo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD

DFU_VERSION=0.16.3
TOOLS="${MD_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/marketdata-tools}"
passed=0
failed=0

result() {
	# result OK NAME [DETAIL FILE]
	if [ "$1" -eq 0 ]; then
		echo "ok - $2"
		passed=$((passed + 1))
	else
		echo "not ok - $2"
		[ -n "${3:-}" ] && [ -s "$3" ] && sed 's/^/#   /' "$3"
		failed=$((failed + 1))
	fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. the compose file, resolved, in a copy of docker/ with the examples in
#    place of the real env files and secrets
cp -a docker "$work/docker"
for ex in "$work"/docker/.env.example "$work"/docker/env/*.example "$work"/docker/secrets/*.example; do
	[ -e "${ex%.example}" ] || cp "$ex" "${ex%.example}"
done
if ! command -v docker-compose >/dev/null; then
	echo "docker-compose is missing (Debian package docker-compose; make deps)" >"$work/err"
	result 1 "docker-compose config docker/compose.yaml" "$work/err"
else
	(cd "$work/docker" && docker-compose -f compose.yaml config) >"$work/resolved.yaml" 2>"$work/err"
	result $? "docker-compose config docker/compose.yaml" "$work/err"
fi

# 2. what the stack must be
if [ -s "$work/resolved.yaml" ]; then
	/usr/bin/python3 "$TOP/docker/check_compose.py" "$work/resolved.yaml" "$TOP" >"$work/shape" 2>&1
	result $? "stack shape (docker/check_compose.py)" "$work/shape"
else
	echo "no resolved compose file to check" >"$work/shape"
	result 1 "stack shape (docker/check_compose.py)" "$work/shape"
fi

# 3. Dockerfiles
dfu="$TOOLS/node_modules/.bin/dockerfile-utils"
if [ ! -x "$dfu" ]; then
	mkdir -p "$TOOLS"
	if ! command -v npm >/dev/null; then
		echo "npm is missing (make deps)" >"$work/npm"
	else
		npm install --prefix "$TOOLS" --no-audit --no-fund --silent \
			"dockerfile-utils@$DFU_VERSION" >"$work/npm" 2>&1
	fi
fi
for f in docker/*.Dockerfile; do
	if [ -x "$dfu" ]; then
		"$dfu" lint "$f" >"$work/lint" 2>&1
		rc=$?
		# warnings do not fail the lint by themselves: ours are none
		[ "$rc" -eq 0 ] && grep -qi 'warning' "$work/lint" && rc=1
		result "$rc" "lint $f" "$work/lint"
	else
		result 1 "lint $f (dockerfile-utils could not be installed)" "$work/npm"
	fi
done

# 4. scripts run inside the containers
for f in docker/postgres/*.sh docker/api/*.sh docker/kafka/*.sh docker/pgbouncer/*.sh docker/check.sh test/docker_test.sh test/docker_stack.sh bench/stack.sh; do
	case "$(head -n 1 "$f")" in
	*bash*) bash -n "$f" 2>"$work/sh" ;;
	*) sh -n "$f" 2>"$work/sh" ;;
	esac
	result $? "syntax $f" "$work/sh"
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
