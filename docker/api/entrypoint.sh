#!/bin/sh
# docker/api/entrypoint.sh: starts one API instance (Kore) as user mdapi.
#
# Runs as root only long enough to copy the compose secrets into a
# directory of mdapi's (a bind-mounted secret keeps the host's owner and
# mode, which the mdapi user may not be allowed to read):
#   /run/secrets/api_db_password -> a libpq password file (passfile=), so
#                                   the password is in no environment
#   /run/secrets/jwt_secret      -> MD_API_JWT_SECRET_FILE (optional)
# The Kore instance file names the listen port and worker count
# (MD_API_LISTEN_PORT, MD_API_WORKERS) and includes api/conf/api.conf.
# Everything else is MD_API_* in the environment (docs/configuration.md).
set -eu

dir=/run/marketdata-api
install -d -o mdapi -g mdapi -m 700 "$dir"

die() {
	echo "entrypoint: $*" >&2
	exit 1
}

# the *.example files' text is not a secret: refuse to run with it
for f in /run/secrets/*; do
	[ -f "$f" ] || continue
	case "$(head -c 9 "$f")" in change-me) die "$f still holds the example text" ;; esac
done

if [ -f /run/secrets/api_db_password ]; then
	# a .pgpass field escapes : and \
	pw=$(sed 's/[\\:]/\\&/g' /run/secrets/api_db_password)
	# host:port:database:user:password, for the primary and the replica
	printf '*:*:*:%s:%s\n' "${MD_API_DATABASE_USER:-md_api}" "$pw" >"$dir/pgpass"
	chown mdapi:mdapi "$dir/pgpass"
	chmod 600 "$dir/pgpass"
	unset pw
	export PGPASSFILE="$dir/pgpass"
fi
# an empty secret file: no bearer tokens (API keys only)
if [ -s /run/secrets/jwt_secret ] && [ -z "${MD_API_JWT_SECRET_FILE:-}" ]; then
	install -o mdapi -g mdapi -m 400 /run/secrets/jwt_secret "$dir/jwt_secret"
	export MD_API_JWT_SECRET_FILE="$dir/jwt_secret"
fi

cat >"$dir/kore.conf" <<CONF
server api {
	bind 0.0.0.0 ${MD_API_LISTEN_PORT:-8080}
	tls no
}
workers ${MD_API_WORKERS:-2}
load /opt/marketdata/api/api.so
include /opt/marketdata/api/conf/api.conf
CONF
chown mdapi:mdapi "$dir/kore.conf"

# -f foreground (Kore is PID 1's child only through exec: signals reach
# it), -n no chroot, -r no privilege drop (we are already mdapi)
exec setpriv --reuid=mdapi --regid=mdapi --init-groups \
	kore -f -n -r -c "$dir/kore.conf"
