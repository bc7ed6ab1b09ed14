# syntax=docker/dockerfile:1
# The marketdata REST API: Debian 12's Kore 4.1 running api/api.so, built
# by kodev. It speaks plain HTTP: TLS ends in the load balancer
# (docker/haproxy.cfg; Kore 4.1 cannot do TLS with OpenSSL 3, see
# docs/configuration.md). Settings are MD_API_* environment variables
# (docs/configuration.md, "REST API settings"); the database password and
# the JWT secret come from compose secrets. Build from the repository root,
# after "make deps" (the dashboard's chart library comes from npm):
#   docker build -f docker/api.Dockerfile .

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
	build-essential kore libhiredis-dev libjwt-dev libjansson-dev libssl-dev libpq-dev openssl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src/api
COPY api/ ./
# the dashboard's chart library, from npm (make deps: npm ci)
COPY node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js assets/lightweight-charts.js
RUN kodev clean >/dev/null 2>&1 || true; kodev build

FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
	kore libhiredis0.14 libjwt0 libjansson4 libpq5 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/marketdata-api --create-home --shell /usr/sbin/nologin mdapi
COPY --from=build /src/api/api.so /opt/marketdata/api/api.so
COPY api/conf/api.conf /opt/marketdata/api/conf/api.conf
COPY docker/api/entrypoint.sh /usr/local/bin/entrypoint.sh
WORKDIR /var/lib/marketdata-api
ENV MD_API_LISTEN_PORT=8080 \
	MD_API_WORKERS=2
EXPOSE 8080
# root only to copy the secrets for the mdapi user; Kore runs as mdapi
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
	CMD ["sh", "-c", "curl -fsS -o /dev/null http://127.0.0.1:${MD_API_LISTEN_PORT}/health"]
