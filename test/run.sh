#!/usr/bin/env bash
# The local stack of "make run": a private PostgreSQL cluster under .run/,
# on loopback, with the extension preloaded and created.
#   test/run.sh start | stop | status
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUN="$TOP/.run"
mkdir -p "$RUN"
# the servers' own files: under .run/, or outside the checkout when the
# database user cannot read it (a clone in root's home)
STATE="$RUN"
db_user_can_read "$RUN" || STATE=$(private_dir run)
PGDATA="$STATE/pgdata"
PGPORT="${MD_PGPORT:-54320}"
DB=marketdata

pg_running() {
	[ -f "$PGDATA/postmaster.pid" ] && as_db_user pg_ctl -D "$PGDATA" status >/dev/null 2>&1
}

start_postgres() {
	db_user_dir "$STATE"
	if [ ! -f "$PGDATA/PG_VERSION" ]; then
		as_db_user initdb -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
		cat >>"$PGDATA/postgresql.conf" <<CONF
# marketdata local stack (make run)
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$STATE'
shared_preload_libraries = 'marketdata'
CONF
	fi
	if pg_running; then
		# a new build of the library needs a restart to be loaded
		as_db_user pg_ctl -D "$PGDATA" -l "$STATE/postgres.log" -w restart -m fast >/dev/null
	else
		as_db_user pg_ctl -D "$PGDATA" -l "$STATE/postgres.log" -w start >/dev/null
	fi
	local psql=(psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres)
	as_db_user "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
		as_db_user "${psql[@]}" -d postgres -c "CREATE DATABASE $DB"
	as_db_user "${psql[@]}" -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS marketdata" \
		-c "ALTER EXTENSION marketdata UPDATE" 2>&1 | grep -v 'already' || true
}

write_env() {
	cat >"$RUN/env" <<ENV
# source this file: . .run/env
export PGHOST=127.0.0.1
export PGPORT=$PGPORT
export PGDATABASE=$DB
export PGUSER=postgres
ENV
}

case "${1:-start}" in
start)
	start_postgres
	write_env
	cat <<MSG

marketdata is running (stop it with: make stop)
  PostgreSQL  postgresql://postgres@127.0.0.1:$PGPORT/$DB   (log: $STATE/postgres.log)

Try it:
  . .run/env
  psql -c "SELECT md_ingest_price('AAPL', 'yahoo_finance', 187.42, now())"
  psql -c "SELECT md_price('AAPL')"
MSG
	;;
stop)
	if pg_running; then
		as_db_user pg_ctl -D "$PGDATA" -w stop -m fast >/dev/null
		echo "stopped PostgreSQL"
	else
		echo "nothing is running"
	fi
	;;
status)
	pg_running && echo "PostgreSQL running on 127.0.0.1:$PGPORT" || echo "PostgreSQL stopped"
	;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
