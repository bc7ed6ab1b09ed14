#!/bin/sh
# docker/pgbouncer/entrypoint.sh: PgBouncer for the API's role md_api.
#
#   marketdata     -> MD_PGBOUNCER_PRIMARY (host or host:port; primary:5432)
#   marketdata_ro  -> MD_PGBOUNCER_REPLICA (replica:5432)
#
# The API's password (the secret api_db_password) is both what clients
# must prove (SCRAM) and what PgBouncer logs in to PostgreSQL with, so it
# goes into an auth_file only the pgbouncer process can read. After a
# failover, "use-primary HOST" points marketdata at the promoted server.
set -eu
dir=/run/pgbouncer
install -d -o postgres -g postgres -m 700 "$dir"

die() {
	echo "entrypoint: $*" >&2
	exit 1
}

[ -f /run/secrets/api_db_password ] || die "the secret api_db_password is missing"
[ "$(head -c 9 /run/secrets/api_db_password)" != change-me ] ||
	die "/run/secrets/api_db_password still holds the example text"
# auth_file: "user" "password", a " doubled
pw=$(sed 's/"/""/g' /run/secrets/api_db_password)
printf '"%s" "%s"\n' "${MD_API_DATABASE_USER:-md_api}" "$pw" >"$dir/userlist.txt"
unset pw
chown postgres:postgres "$dir/userlist.txt"
chmod 600 "$dir/userlist.txt"

/usr/local/bin/use-primary "${MD_PGBOUNCER_PRIMARY:-primary:5432}" --no-reload

cat >"$dir/pgbouncer.ini" <<CONF
[databases]
%include $dir/databases.ini

[pgbouncer]
listen_addr = *
listen_port = 6432
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
; transaction pooling: a server connection per transaction, not per
; client; the API sends unnamed statements only (MD_API_DATABASE_PREPARE=0)
pool_mode = transaction
max_client_conn = ${MD_PGBOUNCER_MAX_CLIENTS:-2000}
default_pool_size = ${MD_PGBOUNCER_POOL_SIZE:-20}
; a server that is gone fails its clients' queries within seconds
; (the API answers 503 database_unavailable) instead of holding them:
; a connect on the same network takes well under a millisecond
server_connect_timeout = 2
server_login_retry = 1
query_wait_timeout = 3
dns_max_ttl = 5
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
CONF
chown postgres:postgres "$dir/pgbouncer.ini"
exec setpriv --reuid=postgres --regid=postgres --init-groups \
	pgbouncer "$dir/pgbouncer.ini"
