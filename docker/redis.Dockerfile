# syntax=docker/dockerfile:1
# Redis from Debian 12 (redis-server 7.0), for where the official
# redis image cannot be pulled (docker/compose.podman.yaml). The command
# line of compose.yaml configures it; nothing is persisted.
#   docker build -f docker/redis.Dockerfile .

FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 6379
USER redis
CMD ["redis-server", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
	CMD ["sh", "-c", "redis-cli ping | grep -q PONG"]
