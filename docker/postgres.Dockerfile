# syntax=docker/dockerfile:1
# PostgreSQL 15 (Debian 12's own package) with the marketdata extension
# built by PGXS and preloaded. One image for both roles: the command
# "primary" initialises a new cluster, "replica" clones the primary with
# pg_basebackup and follows it by streaming replication
# (docker/postgres/entrypoint.sh). Build from the repository root:
#   docker build -f docker/postgres.Dockerfile .
# No secret is in the image: passwords and provider keys come from compose
# secrets at run time (/run/secrets).

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
# no cluster from the package's postinst: ours is made by the entrypoint
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/docker.conf \
 && apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
	build-essential postgresql-15 postgresql-server-dev-15 \
	libcurl4-openssl-dev libhiredis-dev librdkafka-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile marketdata.control ./
COPY extension/ extension/
COPY worker/ worker/
RUN make -j"$(nproc)" PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config \
 && make install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config DESTDIR=/out

FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/docker.conf \
 && apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
	postgresql-15 postgresql-contrib libcurl4 libhiredis0.14 librdkafka1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
COPY docker/postgres/entrypoint.sh docker/postgres/healthcheck.sh /usr/local/bin/
COPY docker/postgres/init-primary.sql /usr/local/share/marketdata/
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
	PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# the entrypoint starts as root only to hand the secrets to the postgres
# user (a bind-mounted secret keeps the host's owner and mode); postgres
# itself runs as "postgres"
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["primary"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
	CMD ["/usr/local/bin/healthcheck.sh"]
