#!/usr/bin/env bash
# The local stack of "make run": a private PostgreSQL cluster under .run/,
# on loopback, with the extension preloaded and created and its workers
# running in the database "marketdata"; with KAFKA=1 also the Kafka test
# broker (test/kafka_broker), which the relay then publishes to.
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
include_if_exists = 'marketdata.conf'
CONF
	fi
	grep -q "include_if_exists = 'marketdata.conf'" "$PGDATA/postgresql.conf" ||
		echo "include_if_exists = 'marketdata.conf'" >>"$PGDATA/postgresql.conf"
	# settings that change from one start to the next
	{
		echo "# written by test/run.sh at every start"
		echo "marketdata.databases = '$DB'"
		if [ -n "$KAFKA_BOOTSTRAP" ]; then
			echo "marketdata.kafka_bootstrap_servers = '$KAFKA_BOOTSTRAP'"
		fi
	} >"$PGDATA/marketdata.conf"
	chown --reference="$PGDATA" "$PGDATA/marketdata.conf" 2>/dev/null || true
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

KAFKA_BOOTSTRAP=""
KAFKA_PIDFILE="$STATE/kafka_broker.pid"

kafka_running() {
	[ -f "$KAFKA_PIDFILE" ] && kill -0 "$(cat "$KAFKA_PIDFILE")" 2>/dev/null
}

start_kafka() {
	if ! kafka_running; then
		rm -f "$STATE/kafka.bootstrap"
		nohup "$TOP/test/kafka_broker" -p 4 -f "$STATE/kafka.bootstrap" price-events \
			>"$STATE/kafka_broker.log" 2>&1 &
		echo $! >"$KAFKA_PIDFILE"
		for _ in $(seq 100); do
			[ -s "$STATE/kafka.bootstrap" ] && break
			sleep 0.1
		done
	fi
	KAFKA_BOOTSTRAP=$(cat "$STATE/kafka.bootstrap")
}

stop_kafka() {
	if kafka_running; then
		kill "$(cat "$KAFKA_PIDFILE")"
		echo "stopped the Kafka test broker"
	fi
	rm -f "$KAFKA_PIDFILE"
}

write_env() {
	cat >"$RUN/env" <<ENV
# source this file: . .run/env
export PGHOST=127.0.0.1
export PGPORT=$PGPORT
export PGDATABASE=$DB
export PGUSER=postgres
ENV
	if [ -n "$KAFKA_BOOTSTRAP" ]; then
		echo "export KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP" >>"$RUN/env"
	fi
}

case "${1:-start}" in
start)
	db_user_dir "$STATE"
	if [ "${KAFKA:-0}" = 1 ]; then
		start_kafka
	else
		stop_kafka >/dev/null
	fi
	start_postgres
	write_env
	cat <<MSG

marketdata is running (stop it with: make stop)
  PostgreSQL  postgresql://postgres@127.0.0.1:$PGPORT/$DB   (log: $STATE/postgres.log)
MSG
	if [ -n "$KAFKA_BOOTSTRAP" ]; then
		echo "  Kafka       $KAFKA_BOOTSTRAP   (test broker; topic price-events; kcat -C -b $KAFKA_BOOTSTRAP -t price-events)"
	fi
	cat <<MSG

Try it:
  . .run/env
  psql -c "SELECT md_ingest_price('AAPL', 'yahoo_finance', 187.42, now())"
  psql -c "SELECT md_price('AAPL')"
MSG
	;;
stop)
	stop_kafka
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
