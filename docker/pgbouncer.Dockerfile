# syntax=docker/dockerfile:1
# PgBouncer from Debian 12 (1.18) between the API instances and
# PostgreSQL, in transaction pooling: the API's many connections share a
# few server connections. Database "marketdata" is the primary,
# "marketdata_ro" the replica (docker/pgbouncer/entrypoint.sh). PgBouncer
# 1.18 does not carry protocol-level prepared statements across server
# connections, so the API sends its queries unnamed behind it
# (MD_API_DATABASE_PREPARE=0).
#   docker build -f docker/pgbouncer.Dockerfile .

FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends pgbouncer postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/*
COPY docker/pgbouncer/entrypoint.sh /usr/local/bin/entrypoint.sh
COPY docker/pgbouncer/use-primary.sh /usr/local/bin/use-primary
EXPOSE 6432
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
	CMD ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "6432"]
