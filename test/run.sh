#!/usr/bin/env bash
# The local stack of "make run": a private PostgreSQL cluster under .run/,
# on loopback, with the extension preloaded and created and its workers
# running in the database "marketdata"; with KAFKA=1 also the Kafka test
# broker (test/kafka_broker), which the relay then publishes to;
# a private Redis, the REST API (Kore, on an internal port) and HAProxy in
# front of it, on the API's public ports (HTTP and HTTPS).
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
REDIS_PORT="${MD_REDIS_PORT:-63790}"
API_PORT="${MD_API_PORT:-8180}"
KORE_PORT="${MD_API_KORE_PORT:-8181}"
HTTPS_PORT="${MD_API_HTTPS_PORT:-8543}"
API_WORKERS="${MD_API_WORKERS:-2}"

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
		# new prices written through to the API's Redis: the API's workers
		# hear the PUBLISH and drop their cached answers at once
		echo "marketdata.redis_url = 'redis://127.0.0.1:$REDIS_PORT'"
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
	# the API's role: the md._api_* functions and nothing else, as in docker
	as_db_user "${psql[@]}" -d "$DB" -v ON_ERROR_STOP=1 -c "DO \$\$BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'md_api') THEN
			CREATE ROLE md_api LOGIN;
		END IF; END\$\$" -c "SELECT md_api_grant('md_api')" >/dev/null
	check_extension_script
}

# The install script of an unreleased version can change while its version
# number does not: then the database keeps the objects of the old script.
# Remember the script the database was made with and say when it differs.
check_extension_script() {
	local script sum
	script="$("$PG_CONFIG" --sharedir)/extension/marketdata--$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$TOP/marketdata.control").sql"
	sum=$(sha256sum "$script" | cut -d' ' -f1)
	if [ ! -f "$STATE/extension.sha256" ]; then
		echo "$sum" >"$STATE/extension.sha256"
	elif [ "$(cat "$STATE/extension.sha256")" != "$sum" ]; then
		cat >&2 <<WARN
warning: the extension's install script changed since the database "$DB" was created,
         with the same version number: its SQL objects are the old ones.
         To start afresh (this drops the local data): make stop; rm -rf $STATE; make run
WARN
	fi
}

start_redis() {
	if [ -f "$RUN/redis.pid" ] && kill -0 "$(cat "$RUN/redis.pid")" 2>/dev/null; then
		return
	fi
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$RUN" --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
	for _ in $(seq 1 100); do
		redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
		sleep 0.05
	done
	echo "redis-server did not start (see .run/redis.log)" >&2
	exit 1
}

# A new admin key at every start (keys are shown once; the old ones stay).
create_key() {
	API_KEY=$(as_db_user psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$DB" -tAc \
		"SELECT md_create_api_key('make-run-' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS'), 'admin')")
}

# alive PID: the process exists and has not exited (a daemon's exited
# process stays a zombie until init reaps it, which may take a while)
alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	case "$state" in Z*) return 1 ;; esac
}

stop_pidfile() {
	local f="$1" name="$2" pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if alive "$pid"; then
		kill -TERM "$pid"
		for _ in $(seq 1 200); do
			alive "$pid" || break
			sleep 0.05
		done
		if alive "$pid"; then
			# 10 s after SIGTERM: nothing of ours may stay behind
			kill -KILL "$pid" 2>/dev/null || true
			echo "killed $name (pid $pid): it did not stop within 10 s" >&2
		else
			echo "stopped $name"
		fi
	fi
	rm -f "$f"
}

start_api() {
	stop_pidfile "$RUN/api.pid" "the API"
	mkdir -p "$RUN/api"
	cat >"$RUN/api/kore.conf" <<CONF
server api {
	bind 127.0.0.1 $KORE_PORT
	tls no
}
workers $API_WORKERS
load $TOP/api/api.so
include $TOP/api/conf/api.conf
CONF
	# kore itself must be $! (no subshell in between), so stop can signal it
	pushd "$RUN/api" >/dev/null
	MD_API_DATABASE_URL="host=127.0.0.1 port=$PGPORT dbname=$DB user=md_api" \
		REDIS_URL="redis://127.0.0.1:$REDIS_PORT" MD_API_TRUSTED_PROXIES=127.0.0.2 \
		nohup kore -f -n -r -c "$RUN/api/kore.conf" >"$RUN/api.log" 2>&1 &
	echo $! >"$RUN/api.pid"
	popd >/dev/null
	wait_healthy "$KORE_PORT" "the API" api.log
}

# wait_healthy PORT WHAT LOG: until GET /health on PORT answers (10 s)
wait_healthy() {
	for _ in $(seq 1 200); do
		curl -fs "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return
		sleep 0.05
	done
	echo "$2 did not start (see .run/$3)" >&2
	exit 1
}

# HAProxy in front of the API on its public ports, plain HTTP and HTTPS
# with a throwaway CA made here (never committed): it passes pipelined
# requests one at a time and answers malformed ones in the API's error
# shape, which Kore 4.1 does not (api/conf/haproxy/). Kore 4.1's own TLS
# does not work with OpenSSL 3 (see docs/configuration.md).
start_lb() {
	stop_pidfile "$RUN/haproxy.pid" "HAProxy"
	"$TOP/test/tls_ca.sh" "$RUN/tls" >/dev/null
	MD_LB_HTTP="127.0.0.1:$API_PORT" MD_LB_HTTPS="127.0.0.1:$HTTPS_PORT" \
		MD_LB_TLS_PEM="$RUN/tls/server.pem" MD_LB_API="127.0.0.1:$KORE_PORT" \
		haproxy -D -p "$RUN/haproxy.pid" -f "$TOP/api/conf/haproxy/marketdata.cfg" \
		-f "$TOP/api/conf/haproxy/local.cfg" </dev/null >>"$RUN/haproxy.log" 2>&1
	wait_healthy "$API_PORT" HAProxy haproxy.log
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
		stop_pidfile "$KAFKA_PIDFILE" "the Kafka test broker"
	fi
	rm -f "$KAFKA_PIDFILE"
}

# online: whether Yahoo Finance's name resolves within a second (no request
# is made; a resolver that answers but a firewall that blocks is not seen)
online() {
	timeout 1 getent hosts query1.finance.yahoo.com >/dev/null 2>&1
}

write_env() {
	cat >"$RUN/env" <<ENV
# source this file: . .run/env
export PGHOST=127.0.0.1
export PGPORT=$PGPORT
export PGDATABASE=$DB
export PGUSER=postgres
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export MD_API_URL=http://127.0.0.1:$API_PORT
export MD_API_HTTPS_URL=https://localhost:$HTTPS_PORT
export MD_API_CACERT=$RUN/tls/ca.pem
export MD_API_KEY=$API_KEY
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
	start_redis
	create_key
	start_api
	start_lb
	write_env
	cat <<MSG

marketdata is running (stop it with: make stop)
  PostgreSQL  postgresql://postgres@127.0.0.1:$PGPORT/$DB   (log: $STATE/postgres.log)
  Redis       redis://127.0.0.1:$REDIS_PORT   (log: .run/redis.log)
  REST API    http://127.0.0.1:$API_PORT   (HAProxy in front of Kore on :$KORE_PORT; logs: .run/api.log, .run/haproxy.log)
  HTTPS       https://localhost:$HTTPS_PORT   (CA: .run/tls/ca.pem)
  API key     $API_KEY   (admin; also in .run/env as MD_API_KEY)
MSG
	if [ -n "$KAFKA_BOOTSTRAP" ]; then
		echo "  Kafka       $KAFKA_BOOTSTRAP   (test broker; topic price-events; kcat -C -b $KAFKA_BOOTSTRAP -t price-events)"
	fi
	# online: poll Yahoo Finance (no key needed); offline: the sandbox
	symbols='{AAPL,MSFT}'
	if online; then
		provider=yahoo_finance
	else
		provider=sandbox
		echo
		echo "(offline: query1.finance.yahoo.com does not resolve, so the examples use the sandbox provider)"
	fi
	cat <<MSG

Try this:
  . .run/env
  psql -c "INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('$symbols', 10, '$provider')"
  psql -c "SELECT symbol, provider, price, ts, fetched_at FROM md.latest_prices"     # within a second or two
  curl -s -H "X-API-Key: \$MD_API_KEY" "\$MD_API_URL/prices/latest?symbol=AAPL&provider=$provider"
  curl -s --cacert "\$MD_API_CACERT" "\$MD_API_HTTPS_URL/health/ready"
  psql -c "DELETE FROM md.polling_jobs"                                              # stops polling
MSG
	;;
stop)
	stop_pidfile "$RUN/haproxy.pid" "HAProxy"
	stop_pidfile "$RUN/api.pid" "the API"
	stop_pidfile "$RUN/redis.pid" "Redis"
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
