# syntax=docker/dockerfile:1
# The load balancer: Debian 12's HAProxy terminating TLS in front of the
# API instances (docker/haproxy.cfg). The certificate (certificate + key in
# one PEM file) is a compose secret, never part of the image.
#   docker build -f docker/haproxy.Dockerfile .

FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends haproxy curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY api/conf/haproxy/ /etc/haproxy/marketdata/
COPY docker/haproxy.cfg /etc/haproxy/haproxy.cfg
EXPOSE 80 443
# HAProxy reads the certificate as root, then runs as user haproxy
# ("user"/"group" in haproxy.cfg)
CMD ["haproxy", "-W", "-db", "-f", "/etc/haproxy/marketdata/marketdata.cfg", "-f", "/etc/haproxy/haproxy.cfg"]
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
	CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8404/lb-health"]
