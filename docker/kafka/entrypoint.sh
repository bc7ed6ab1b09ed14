#!/bin/sh
# docker/kafka/entrypoint.sh: test/kafka_broker listening on this
# container's address (docker/kafka/mock_listen.c), which it advertises.
set -eu
addr=${MD_KAFKA_ADVERTISED_ADDRESS:-$(hostname -i | awk '{print $1}')}
export MD_KAFKA_ADVERTISED_ADDRESS="$addr" LD_PRELOAD=/usr/local/lib/mock_listen.so
# shellcheck disable=SC2086 # the topics are words
exec kafka_broker -b 1 -p "$MD_KAFKA_PARTITIONS" $MD_KAFKA_TOPICS
