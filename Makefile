# marketdata: PGXS build of the extension, plus run/test/bench targets.
#
#   make            build marketdata.so
#   make install    install the extension into PostgreSQL (root)
#   make deps       install every Debian package the project needs
#   make api        build the REST API (api/api.so, kodev)
#   make run        build, install, start the local stack under .run/
#   make stop       stop what make run started
#   make test       run every test suite (pg_regress, isolation, TAP, fuzz) on servers of its own
#   make installcheck  the same against a running server (PGXS; prove_installcheck: TAP only)
#   make fuzz       fuzz every target for FUZZ_SECONDS (default 300) seconds
#   make bench      run the benchmarks under bench/
#   make docker-check  validate docker/ (compose file, Dockerfiles) without a Docker engine
#   make docker-test   build the images, run the stack with podman, test it end to end

EXTENSION = marketdata
# the version is spelt once, in the control file
EXTVERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" marketdata.control)
MODULE_big = marketdata
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard extension/*.c worker/*.c)))
# the current version's install script is built; released versions' install
# scripts (extension/marketdata--X.sql, frozen at release) and the upgrade
# scripts (extension/marketdata--A--B.sql) are kept in the repository
DATA_built = marketdata--$(EXTVERSION).sql
DATA = $(filter-out extension/marketdata--$(EXTVERSION).sql,$(wildcard extension/marketdata--*.sql))
SHLIB_LINK = -lcurl -lhiredis -lrdkafka
PG_CPPFLAGS = -Iextension -Iworker -DMD_EXTVERSION='"$(EXTVERSION)"'
PG_CFLAGS = -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror
EXTRA_CLEAN = marketdata--$(EXTVERSION).sql test/kafka_broker

# The PGXS test conventions, each list found from the files: make
# installcheck runs pg_regress (sql/), isolation (test/isolation/specs/) and
# TAP (test/t/, each test starts its own servers) against the installed
# extension and a running server whose shared_preload_libraries has
# marketdata; make prove_installcheck only the TAP tests.
REGRESS = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=marketdata
ISOLATION = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=marketdata
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))
PROVE_FLAGS = -I test/perl

PG_CONFIG ?= pg_config
export PG_CONFIG
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifeq ($(PGXS),)
# Nothing of PostgreSQL's is installed yet: only the targets that install it work.
.DEFAULT_GOAL := deps-hint
deps-hint:
	@echo "PostgreSQL's build tools are missing: run 'make deps' (as root) first."
	@exit 1
else
include $(PGXS)
endif

# PGXS tracks no header dependencies: rebuild every object when a header
# changes, so no object is left with a stale struct layout.
$(OBJS): $(wildcard extension/*.h worker/*.h)
# the version is compiled in (extension/version.c)
$(OBJS): marketdata.control

# The install script is the schema, the functions, then the bars.
marketdata--$(EXTVERSION).sql: extension/schema.sql extension/functions.sql extension/bars.sql
	cat $^ > $@

.PHONY: deps run stop test bench deps-hint api docker-check docker-test test-programs fuzz

# what the TAP tests start: the Kafka test broker, the fake provider, the API
test-programs: test/kafka_broker api
	$(MAKE) -s -C test/fake_provider
ifdef TAP_TESTS
installcheck prove_installcheck: test-programs
endif

# The Kafka test broker: librdkafka's mock cluster (test/kafka_broker.c).
test/kafka_broker: test/kafka_broker.c
	$(CC) -std=c11 -D_DEFAULT_SOURCE -O2 -Wall -Wextra -Werror -o $@ $< -lrdkafka

deps:
	./test/deps.sh

# The Kore application: kodev builds api/api.so from api/src and api/assets.
# kodev rebuilds only the .c files that changed, not those including a
# changed header: a header newer than api.so means a clean build. The
# dashboard's chart library comes from node_modules (make deps: npm ci).
CHART_JS = node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js
api/assets/lightweight-charts.js: $(CHART_JS)
	cp $< $@
$(CHART_JS):
	@echo "$@ is missing: run 'make deps' (npm ci)"; exit 1

api: api/assets/lightweight-charts.js
	cd api && if [ -f api.so ] && [ -n "$$(find src -name '*.h' -newer api.so)" ]; then \
		kodev clean; fi && kodev build

run:
	./test/deps.sh --if-missing
	$(MAKE) install test/kafka_broker
	$(MAKE) api
	./test/run.sh start

stop:
	./test/run.sh stop

test:
	./test/deps.sh --if-missing
	$(MAKE) install test/kafka_broker
	$(MAKE) api
	./test/run_tests.sh

# The fuzzers, longer than make test's 20 s a target: libFuzzer (clang,
# ASan+UBSan) for code that links alone, zzuf through the real servers
FUZZ_SECONDS ?= 300
fuzz:
	./test/deps.sh --if-missing
	$(MAKE) install test/kafka_broker
	$(MAKE) api
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./test/run_tests.sh fuzz test/t/090_fuzz_servers.pl

bench:
	./test/deps.sh --if-missing
	$(MAKE) install test/kafka_broker
	$(MAKE) api
	./bench/run.sh

# docker/: docker-compose config, the stack's shape, Dockerfile lint (no
# Docker engine needed; docker/check.sh)
docker-check:
	./test/deps.sh --if-missing
	./docker/check.sh

# docker/: the images built and the stack run with podman, tested end to
# end (test/docker_test.sh; needs root for podman's networks)
docker-test:
	./test/deps.sh --if-missing
	./test/docker_test.sh
