#!/bin/sh
# docker/postgres/healthcheck.sh: healthy when the server answers and is
# what its data directory says it is:
#   standby (standby.signal): in recovery and streaming from the primary;
#   primary: not in recovery, with the marketdata extension installed.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
q() {
	setpriv --reuid=postgres --regid=postgres --init-groups \
		psql -X -q -At -h /run/postgresql -U postgres -d "${MD_DATABASES%%,*}" -c "$1"
}
MD_DATABASES="${MD_DATABASES:-marketdata}"
if [ -f "$PGDATA/standby.signal" ]; then
	[ "$(q "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')")" = t ]
else
	[ "$(q "SELECT NOT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'marketdata')")" = t ]
fi
