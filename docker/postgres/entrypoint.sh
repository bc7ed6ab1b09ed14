#!/bin/bash
# docker/postgres/entrypoint.sh primary|replica: the PostgreSQL container.
#
#   primary  on an empty volume: initdb (superuser password from the secret
#            postgres_password), settings for streaming replication, then
#            init-primary.sql (database marketdata, CREATE EXTENSION, the
#            replication and API roles, the replica's slot).
#   replica  on an empty volume: waits for the primary and clones it with
#            pg_basebackup -R (standby.signal, primary_conninfo), using the
#            replication slot MD_REPLICATION_SLOT. The marketdata workers
#            do not run on a standby (BgWorkerStart_RecoveryFinished); they
#            start if it is promoted.
#
# At every start, marketdata.conf (included by postgresql.conf) is written
# from the environment: MD_DATABASES, MD_REDIS_URL,
# MD_KAFKA_BOOTSTRAP_SERVERS, MD_KAFKA_TOPIC. Provider keys: the secret
# provider_keys ("provider = key" lines) becomes marketdata.secrets_file,
# copied to a file only postgres can read (the extension refuses a secrets
# file others can read; a bind-mounted secret keeps the host's owner and
# mode). Likewise the secret kafka_properties (librdkafka properties: TLS,
# SASL) becomes marketdata.kafka_config_file. Other settings: ALTER SYSTEM
# (kept in the volume).
set -euo pipefail

role="${1:-primary}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
PGHOME=/var/lib/postgresql
RUNDIR=/run/marketdata
SOCKDIR=/run/postgresql

as_pg() {
	setpriv --reuid=postgres --regid=postgres --init-groups \
		env HOME="$PGHOME" PATH="$PATH" "$@"
}

die() {
	echo "entrypoint: $*" >&2
	exit 1
}

# copy_secret NAME MODE: /run/secrets/NAME -> $RUNDIR/NAME, postgres's own
copy_secret() {
	[ -f "/run/secrets/$1" ] || return 1
	install -o postgres -g postgres -m "${2:-600}" "/run/secrets/$1" "$RUNDIR/$1"
}

conf_value() {
	# a value inside '…' in postgresql.conf: no quote, no newline
	case "$2" in *"'"* | *$'\n'*) die "$1 must not contain a quote or a newline" ;; esac
	printf "%s = '%s'\n" "$1" "$2"
}

# the *.example files' text is not a secret: refuse to run with it
for f in /run/secrets/*; do
	[ -f "$f" ] || continue
	[ "$(head -c 9 "$f")" != change-me ] || die "$f still holds the example text"
done

install -d -o postgres -g postgres -m 700 "$RUNDIR"
install -d -o postgres -g postgres -m 2775 "$SOCKDIR"
install -d -o postgres -g postgres -m 700 "$PGDATA"

init_primary() {
	copy_secret postgres_password || die "the secret postgres_password is missing"
	copy_secret replication_password || die "the secret replication_password is missing"
	copy_secret api_db_password || die "the secret api_db_password is missing"
	as_pg initdb -D "$PGDATA" -U postgres --pwfile="$RUNDIR/postgres_password" \
		--auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
	cat >>"$PGDATA/postgresql.conf" <<CONF

# marketdata (docker/postgres/entrypoint.sh)
listen_addresses = '*'
unix_socket_directories = '$SOCKDIR'
shared_preload_libraries = 'marketdata'
password_encryption = 'scram-sha-256'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
# on a standby: keep its readers' rows from being vacuumed away on the primary
hot_standby = on
hot_standby_feedback = on
include_if_exists = 'marketdata.conf'
CONF
	cat >>"$PGDATA/pg_hba.conf" <<HBA
# marketdata: the replica and the API, on the compose networks only
host replication replicator samenet scram-sha-256
host all all samenet scram-sha-256
HBA
	write_marketdata_conf
	as_pg pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -U postgres -d postgres \
		-v secrets="$RUNDIR" -v slot="${MD_REPLICATION_SLOT:-replica1}" \
		-f /usr/local/share/marketdata/init-primary.sql
	as_pg pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
	rm -f "$RUNDIR/postgres_password" "$RUNDIR/replication_password" "$RUNDIR/api_db_password"
}

init_replica() {
	local host="${MD_PRIMARY_HOST:-primary}" port="${MD_PRIMARY_PORT:-5432}"
	[ -f /run/secrets/replication_password ] || die "the secret replication_password is missing"
	for _ in $(seq 1 120); do
		pg_isready -q -h "$host" -p "$port" && break
		sleep 1
	done
	pg_isready -q -h "$host" -p "$port" || die "the primary $host:$port is not ready after 120 s"
	as_pg pg_basebackup -D "$PGDATA" -X stream -R -c fast \
		-S "${MD_REPLICATION_SLOT:-replica1}" \
		-d "host=$host port=$port user=replicator passfile=$PGHOME/.pgpass application_name=${MD_REPLICATION_SLOT:-replica1}"
}

write_marketdata_conf() {
	{
		echo "# written by docker/postgres/entrypoint.sh at every start"
		conf_value marketdata.databases "${MD_DATABASES:-marketdata}"
		conf_value marketdata.redis_url "${MD_REDIS_URL:-}"
		conf_value marketdata.kafka_bootstrap_servers "${MD_KAFKA_BOOTSTRAP_SERVERS:-}"
		conf_value marketdata.kafka_topic "${MD_KAFKA_TOPIC:-price-events}"
		if [ -f "$RUNDIR/provider_keys" ]; then
			conf_value marketdata.secrets_file "$RUNDIR/provider_keys"
		fi
		if [ -f "$RUNDIR/kafka_properties" ]; then
			conf_value marketdata.kafka_config_file "$RUNDIR/kafka_properties"
		fi
	} >"$PGDATA/marketdata.conf"
	chown postgres:postgres "$PGDATA/marketdata.conf"
	chmod 600 "$PGDATA/marketdata.conf"
}

# the replication password, for pg_basebackup and the standby's walreceiver
if [ -f /run/secrets/replication_password ]; then
	# a .pgpass field escapes : and \
	printf '*:*:*:replicator:%s\n' "$(sed 's/[\\:]/\\&/g' /run/secrets/replication_password)" >"$PGHOME/.pgpass"
	chown postgres:postgres "$PGHOME/.pgpass"
	chmod 600 "$PGHOME/.pgpass"
fi
copy_secret provider_keys 600 || rm -f "$RUNDIR/provider_keys"
copy_secret kafka_properties 600 || rm -f "$RUNDIR/kafka_properties"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	case "$role" in
	primary) init_primary ;;
	replica) init_replica ;;
	*) die "usage: entrypoint.sh primary|replica" ;;
	esac
fi
write_marketdata_conf

exec setpriv --reuid=postgres --regid=postgres --init-groups \
	env HOME="$PGHOME" PATH="$PATH" postgres -D "$PGDATA"
