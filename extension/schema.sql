-- extension/schema.sql
--	Tables of the marketdata extension, all in schema md.
--
--	A *provider* is a source of prices called over HTTP; a *job* is a polling
--	schedule, a *run* one execution of it; a *price* is one observation of a
--	symbol's price at the market's time `ts`. Constraints refuse bad data at
--	the door; the sink (sink.c) normalises and checks before it gets here.

\echo Use "CREATE EXTENSION marketdata" to load this file. \quit

CREATE SCHEMA md;
COMMENT ON SCHEMA md IS 'marketdata: prices, providers, polling jobs, Kafka and API state';

-- A valid symbol after normalisation: 1-32 characters of A-Z 0-9 . - ^ = _ /
-- starting with a letter, digit or ^, without ".." (BRK.B, ^GSPC, EURUSD=X,
-- GC=F, BTC-USD, OCDO.L). extension/symbol.c applies the same rule.
-- Not STRICT: the planner inlines only a strict function whose body is all
-- strict, and AND is not; inlined, the CHECK on md.prices costs no function
-- call per row. NULL in gives NULL out all the same.
CREATE FUNCTION md._symbol_ok(text) RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN $1 ~ '^[A-Z0-9^][A-Z0-9.^=_/-]{0,31}$' AND strpos($1, '..') = 0;
COMMENT ON FUNCTION md._symbol_ok(text) IS
	'true when the text is a normalised symbol (1-32 of A-Z 0-9 . - ^ = _ /, starting with a letter, digit or ^, no "..")';

CREATE TABLE md.providers (
	name		text PRIMARY KEY
				CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
	base_url	text NOT NULL CHECK (base_url ~ '^https?://'),
	priority	integer NOT NULL DEFAULT 100,
	enabled		boolean NOT NULL DEFAULT true,
	failover	boolean NOT NULL DEFAULT true,
	rate_limit_per_minute integer NOT NULL DEFAULT 60
				CHECK (rate_limit_per_minute BETWEEN 1 AND 1000000),
	max_concurrency integer NOT NULL DEFAULT 8
				CHECK (max_concurrency BETWEEN 1 AND 1024),
	created_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE md.providers IS
	'market data providers; failover tries enabled providers with failover = true by ascending priority. API keys are not stored here.';
COMMENT ON COLUMN md.providers.base_url IS 'overridable; tests point it at the local fake provider';
COMMENT ON COLUMN md.providers.failover IS 'false: used only when asked for by name (the sandbox)';

INSERT INTO md.providers (name, base_url, priority, rate_limit_per_minute, failover) VALUES
	('yahoo_finance', 'https://query1.finance.yahoo.com', 10, 60, true),
	('finnhub', 'https://finnhub.io', 20, 60, true),
	('polygon', 'https://api.polygon.io', 30, 5, true),
	('alpha_vantage', 'https://www.alphavantage.co', 40, 5, true),
	('sandbox', 'http://sandbox.invalid', 1000, 100000, false);

CREATE TABLE md.polling_jobs (
	id			bigserial PRIMARY KEY,
	symbols		text[] NOT NULL
				CHECK (cardinality(symbols) BETWEEN 1 AND 500),
	interval	integer NOT NULL CHECK (interval BETWEEN 1 AND 86400),
	provider	text NOT NULL REFERENCES md.providers (name) ON UPDATE CASCADE,
	enabled		boolean NOT NULL DEFAULT true,
	next_run_at timestamptz NOT NULL DEFAULT now() CHECK (isfinite(next_run_at)),
	last_run_at timestamptz,
	last_status text CHECK (last_status IN ('running', 'succeeded', 'partial', 'failed')),
	last_error	text,
	created_at	timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
-- Each run updates its job's row twice (claim, finish). No index on the
-- columns they change and half of each page free make those HOT updates:
-- no index entries, old versions pruned in place, no bloat. The scheduler
-- reads all jobs each second without an index: thousands of narrow rows.
COMMENT ON TABLE md.polling_jobs IS
	'polling schedules: INSERT schedules, UPDATE changes, DELETE stops; interval in seconds (1 s to 1 day)';

CREATE TABLE md.job_runs (
	id			bigserial PRIMARY KEY,
	job_id		bigint NOT NULL,
	status		text NOT NULL DEFAULT 'running'
				CHECK (status IN ('running', 'succeeded', 'partial', 'failed')),
	started_at	timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz,
	symbols_ok	integer NOT NULL DEFAULT 0,
	symbols_failed integer NOT NULL DEFAULT 0,
	error_classes text[],
	message		text,
	worker_pid	integer			-- the scheduler that claimed the run
);
CREATE INDEX job_runs_job_idx ON md.job_runs (job_id, started_at DESC);
CREATE INDEX job_runs_started_idx ON md.job_runs (started_at);
-- the runs under way: a few among millions kept for days
CREATE INDEX job_runs_running_idx ON md.job_runs (worker_pid) WHERE status = 'running';
COMMENT ON TABLE md.job_runs IS
	'history of polling job runs (kept after the job is deleted, trimmed by retention)';

CREATE TABLE md.raw_responses (
	id			bigserial PRIMARY KEY,
	provider	text NOT NULL,
	symbol		text,
	url			text,
	http_status integer,
	latency_ms	double precision,
	error_class text,
	body		text,
	received_at timestamptz NOT NULL DEFAULT now(),
	body_bytes	integer,
	body_sha256 bytea
);
-- md.provider_status (and so /health/ready) asks each provider's newest
-- success and newest error: an index for each, with the view's predicates
-- and order (the id makes raw_responses_received_idx unable to give that
-- order, which the planner otherwise picks for a provider without rows and
-- then reads every row), so no look-up scans past the other kind
CREATE INDEX raw_responses_ok_idx ON md.raw_responses (provider, received_at DESC, id DESC)
	WHERE error_class IS NULL OR error_class IN ('unknown_symbol', 'no_data');
CREATE INDEX raw_responses_errors_idx ON md.raw_responses (provider, received_at DESC, id DESC)
	WHERE error_class IN ('rate_limited', 'auth_failed', 'unavailable', 'malformed');
-- retention deletes the oldest first
CREATE INDEX raw_responses_received_idx ON md.raw_responses (received_at);
COMMENT ON TABLE md.raw_responses IS
	'every provider response as received (body up to the size cap); URLs have their secrets masked';
COMMENT ON COLUMN md.raw_responses.body IS
	'the body as stored (secrets masked, hex when not text); NULL for a success when marketdata.raw_response_bodies = errors';
COMMENT ON COLUMN md.raw_responses.body_bytes IS 'size of the stored body in bytes, also when the body itself is not kept';
COMMENT ON COLUMN md.raw_responses.body_sha256 IS 'SHA-256 of the stored body, also when the body itself is not kept';

CREATE TABLE md.prices (
	symbol		text NOT NULL CHECK (md._symbol_ok(symbol)),
	provider	text NOT NULL REFERENCES md.providers (name) ON UPDATE CASCADE,
	price		numeric NOT NULL
				CHECK (price > 0 AND price < 'Infinity'::numeric),
	ts			timestamptz NOT NULL
				CHECK (ts >= '1970-01-01 00:00:00+00'),
	volume		numeric CHECK (volume >= 0 AND volume < 'Infinity'::numeric),
	currency	text CHECK (currency ~ '^[A-Za-z]{3,5}$'),
	raw_response_id bigint,
	ingested_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (ts);
-- The key (symbol, provider, ts) and the (symbol, ts DESC, provider) index
-- live on each partition (md._ensure_price_partition), not on this parent:
-- the parent belongs to the extension, and pg_dump cannot restore partitions
-- whose indexes hang off an extension-owned parent index. ts picks the
-- partition, so a key unique in each partition is unique in all.
COMMENT ON TABLE md.prices IS
	'price history, one row per (symbol, provider, market time); monthly partitions md.prices_YYYYMM are created by the sink as needed';
COMMENT ON COLUMN md.prices.ts IS 'the market''s time of the price, UTC';

CREATE TABLE md.latest_prices (
	symbol		text NOT NULL,
	provider	text NOT NULL,
	price		numeric NOT NULL,
	ts			timestamptz NOT NULL,
	fetched_at	timestamptz NOT NULL DEFAULT now(),
	volume		numeric,
	currency	text,
	raw_response_id bigint,
	PRIMARY KEY (symbol, provider)
);
COMMENT ON TABLE md.latest_prices IS
	'newest price per (symbol, provider): ts is the market''s time, fetched_at when we last heard from the provider (freshness)';

CREATE TABLE md.symbol_averages (
	symbol		text NOT NULL,
	"window"	integer NOT NULL CHECK ("window" BETWEEN 1 AND 1000),
	average		numeric NOT NULL,
	points		integer NOT NULL,
	last_ts		timestamptz NOT NULL,
	updated_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (symbol, "window")
);
COMMENT ON TABLE md.symbol_averages IS
	'moving average of each symbol''s newest prices (all providers), one row per window in marketdata.average_windows';

CREATE TABLE md.outbox (
	id			bigserial PRIMARY KEY,
	-- the writing transaction: the relay publishes by snapshots of these
	xact		xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	symbol		text NOT NULL,
	payload		json NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_xact_idx ON md.outbox (xact, id);
CREATE INDEX outbox_created_at_idx ON md.outbox USING brin (created_at);
COMMENT ON TABLE md.outbox IS
	'price events waiting to be published to Kafka (transactional outbox); published are the rows whose xact is visible in md.outbox_published.snapshot';

-- How far the relay has published: every outbox row whose transaction is
-- visible in the newest row's snapshot has had its delivery report. One
-- INSERT per batch of delivery reports instead of an UPDATE per event;
-- append-only, so that a dump restores it without a conflict.
CREATE TABLE md.outbox_published (
	id			bigserial PRIMARY KEY,
	snapshot	pg_snapshot NOT NULL,
	-- the cluster the xids belong to: after a restore into another cluster
	-- the relay takes the outbox's rows afresh (md._outbox_adopt)
	system_identifier bigint NOT NULL,
	at			timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE md.outbox_published IS
	'the relay''s progress: outbox rows of transactions visible in the newest snapshot are published';

CREATE TABLE md.kafka_subscriptions (
	id			bigserial PRIMARY KEY,
	topic		text NOT NULL CHECK (topic ~ '^[A-Za-z0-9._-]{1,249}$'),
	group_id	text NOT NULL DEFAULT 'marketdata'
				CHECK (group_id ~ '^[A-Za-z0-9._-]{1,249}$'),
	format		text NOT NULL DEFAULT 'price_event' CHECK (format IN ('price_event')),
	start_position text NOT NULL DEFAULT 'earliest'
				CHECK (start_position IN ('earliest', 'latest')),
	enabled		boolean NOT NULL DEFAULT true,
	created_at	timestamptz NOT NULL DEFAULT now(),
	error		text,
	UNIQUE (topic, group_id)
);
COMMENT ON TABLE md.kafka_subscriptions IS
	'Kafka topics consumed into md.prices; INSERT starts consumption, disable or DELETE stops it';
COMMENT ON COLUMN md.kafka_subscriptions.error IS
	'why the consumer cannot use the row (set by the consumer); NULL when it can';

INSERT INTO md.kafka_subscriptions (topic) VALUES ('price-events');

CREATE TABLE md.kafka_offsets (
	topic		text NOT NULL,
	group_id	text NOT NULL,
	partition	integer NOT NULL CHECK (partition >= 0),
	next_offset bigint NOT NULL CHECK (next_offset >= 0),
	high_watermark bigint,
	last_message_at timestamptz,
	updated_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (topic, group_id, partition)
);
COMMENT ON TABLE md.kafka_offsets IS
	'next offset to consume per partition, written in the same transaction as the rows it produced';
COMMENT ON COLUMN md.kafka_offsets.high_watermark IS
	'the partition''s end offset as the consumer last heard it from Kafka (for lag)';
COMMENT ON COLUMN md.kafka_offsets.last_message_at IS
	'Kafka timestamp of the last message consumed from the partition';

CREATE TABLE md.kafka_gaps (
	id			bigserial PRIMARY KEY,
	topic		text NOT NULL,
	group_id	text NOT NULL,
	partition	integer NOT NULL CHECK (partition >= 0),
	first_offset bigint NOT NULL CHECK (first_offset >= 0),
	last_offset bigint NOT NULL CHECK (last_offset >= first_offset),
	detected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kafka_gaps_partition_idx ON md.kafka_gaps (topic, group_id, partition);
COMMENT ON TABLE md.kafka_gaps IS
	'offsets the broker deleted (retention) before the consumer read them: lost messages';

CREATE TABLE md.dead_letters (
	id			bigserial PRIMARY KEY,
	source		text NOT NULL CHECK (source IN ('kafka', 'provider', 'api', 'sql')),
	topic		text,
	partition	integer,
	"offset"	bigint,
	key			bytea,
	payload		bytea,
	reason		text NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_received_idx ON md.dead_letters (received_at);
COMMENT ON TABLE md.dead_letters IS
	'messages and responses that could not be ingested, kept with the reason';

CREATE TABLE md.api_keys (
	id			bigserial PRIMARY KEY,
	name		text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
	key_hash	text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
	key_prefix	text NOT NULL,
	role		text NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
	created_at	timestamptz NOT NULL DEFAULT now(),
	revoked_at	timestamptz,
	last_used_at timestamptz
);
COMMENT ON TABLE md.api_keys IS
	'REST API keys: SHA-256 hex of the key (never the key), a short prefix to recognise it, and a role';
COMMENT ON COLUMN md.api_keys.key_hash IS 'hex SHA-256 of the whole key';

-- What retention (md_retention_run, the retention worker) removed, per table.
CREATE TABLE md.retention_status (
	table_name	text PRIMARY KEY,
	retention	interval,			-- the setting at the last run; NULL: kept for ever
	rows_removed bigint NOT NULL DEFAULT 0,
	partitions_removed integer NOT NULL DEFAULT 0,
	last_run_at timestamptz,
	oldest_kept timestamptz
);
COMMENT ON TABLE md.retention_status IS
	'retention of each growing table: the setting, rows and partitions removed in all, the last run, and the oldest row kept';

-- pg_dump keeps what users put in these tables (the built-in rows come back with CREATE EXTENSION).
SELECT pg_catalog.pg_extension_config_dump('md.providers', 'WHERE name NOT IN (''yahoo_finance'', ''finnhub'', ''polygon'', ''alpha_vantage'', ''sandbox'')');
SELECT pg_catalog.pg_extension_config_dump('md.kafka_subscriptions', 'WHERE topic <> ''price-events'' OR group_id <> ''marketdata''');
SELECT pg_catalog.pg_extension_config_dump('md.kafka_subscriptions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('md.polling_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('md.polling_jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('md.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('md.job_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('md.raw_responses', '');
SELECT pg_catalog.pg_extension_config_dump('md.raw_responses_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('md.latest_prices', '');
SELECT pg_catalog.pg_extension_config_dump('md.symbol_averages', '');
SELECT pg_catalog.pg_extension_config_dump('md.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('md.outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('md.outbox_published', '');
SELECT pg_catalog.pg_extension_config_dump('md.outbox_published_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('md.kafka_offsets', '');
SELECT pg_catalog.pg_extension_config_dump('md.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('md.dead_letters_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('md.api_keys', '');
SELECT pg_catalog.pg_extension_config_dump('md.api_keys_id_seq', '');
-- added in 0.2.0: last, where the upgrade script adds them
SELECT pg_catalog.pg_extension_config_dump('md.kafka_gaps', '');
SELECT pg_catalog.pg_extension_config_dump('md.kafka_gaps_id_seq', '');
