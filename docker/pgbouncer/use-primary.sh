#!/bin/sh
# use-primary HOST[:PORT] [--no-reload]: PgBouncer's database "marketdata"
# (the API's writes) goes to HOST from now on; "marketdata_ro" stays on
# MD_PGBOUNCER_REPLICA. Run after promoting a replica:
#   docker compose exec pgbouncer use-primary replica
# PgBouncer reloads (SIGHUP): new transactions go to HOST, connections to
# the old primary are closed.
set -eu
dir=/run/pgbouncer
hostport="$1"
host=${hostport%%:*}
port=5432
[ "$host" = "$hostport" ] || port=${hostport#*:}
replica=${MD_PGBOUNCER_REPLICA:-replica:5432}
rhost=${replica%%:*}
rport=5432
[ "$rhost" = "$replica" ] || rport=${replica#*:}
cat >"$dir/databases.ini.tmp" <<CONF
marketdata = host=$host port=$port dbname=marketdata
marketdata_ro = host=$rhost port=$rport dbname=marketdata
CONF
chown postgres:postgres "$dir/databases.ini.tmp"
mv "$dir/databases.ini.tmp" "$dir/databases.ini"
[ "${2:-}" = --no-reload ] || kill -HUP 1
