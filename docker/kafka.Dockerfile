# syntax=docker/dockerfile:1
# A stand-in for the Kafka brokers where no Kafka image can be pulled (the
# local run of docker/compose.podman.yaml): test/kafka_broker, librdkafka's
# mock cluster, which speaks the real Kafka protocol (produce, fetch,
# consumer groups, idempotence) but keeps its log in memory, on one broker.
# docker/kafka/mock_listen.c makes it listen on the container's network.
# kcat is in the image to look at the topic from inside the stack.
#   docker build -f docker/kafka.Dockerfile .

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends gcc libc6-dev librdkafka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY test/kafka_broker.c docker/kafka/mock_listen.c ./
RUN gcc -std=c11 -D_DEFAULT_SOURCE -O2 -Wall -Wextra -Werror -o kafka_broker kafka_broker.c -lrdkafka \
 && gcc -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -o mock_listen.so mock_listen.c -ldl

FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends librdkafka1 kcat \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin kafka
COPY --from=build /src/kafka_broker /usr/local/bin/kafka_broker
COPY --from=build /src/mock_listen.so /usr/local/lib/mock_listen.so
COPY docker/kafka/entrypoint.sh /usr/local/bin/entrypoint.sh
ENV MD_KAFKA_PORT=9092 \
	MD_KAFKA_PARTITIONS=12 \
	MD_KAFKA_TOPICS=price-events
EXPOSE 9092
USER kafka
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=5s --start-period=5s --retries=3 \
	CMD ["sh", "-c", "kcat -b 127.0.0.1:${MD_KAFKA_PORT} -L -m 3 >/dev/null 2>&1"]
