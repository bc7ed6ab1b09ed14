-- extension/functions.sql
--	The SQL API: user functions md_* in the extension's schema, internal
--	ones in md with a leading underscore, and the operators' views.

-- Internal helpers ---------------------------------------------------------

CREATE FUNCTION @extschema@._md_normalize_symbol(symbol text) RETURNS text
	AS 'MODULE_PATHNAME', 'md_normalize_symbol_sql'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@._md_normalize_symbol(text) IS
	'trims and upper-cases a symbol; errors naming it when it is not 1-32 of A-Z 0-9 . - ^ = _ /';

CREATE FUNCTION @extschema@._md_normalize_symbols(symbols text[]) RETURNS text[]
	AS 'MODULE_PATHNAME', 'md_normalize_symbols_sql'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@._md_normalize_symbols(text[]) IS
	'normalises a job''s symbol list: 1 to 500 symbols, no NULLs, no duplicates';

CREATE FUNCTION md._random_hex(nbytes integer) RETURNS text
	AS 'MODULE_PATHNAME', 'md_random_hex'
	LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION md._random_hex(integer) IS
	'nbytes of cryptographically strong randomness, hex-encoded';

-- The JSON of prices, written once for Redis, Kafka and (later) the REST API.
-- STABLE like the to_char and json_build_object they call, so the planner
-- inlines them into the sink's statement (an IMMUTABLE wrapper around a
-- STABLE body is never inlined, and costs a SQL function call per price).
CREATE FUNCTION md._iso_utc(ts timestamptz) RETURNS text
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	-- 2026-11-20T15:30:00Z, with fractional seconds only when there are some
	RETURN rtrim(rtrim(to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z';
COMMENT ON FUNCTION md._iso_utc(timestamptz) IS
	'ISO-8601 UTC text of a timestamp, as in every JSON marketdata writes';

CREATE FUNCTION md._price_json(symbol text, price numeric, ts timestamptz, provider text)
	RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE
	RETURN json_build_object('symbol', symbol, 'price', price,
							 'timestamp', md._iso_utc(ts), 'provider', provider)::text;
COMMENT ON FUNCTION md._price_json(text, numeric, timestamptz, text) IS
	'the latest price as the REST API serves it and Redis caches it';

CREATE FUNCTION md._price_event(symbol text, provider text, price numeric, ts timestamptz,
	raw_response_id bigint)
	RETURNS json
	LANGUAGE sql STABLE PARALLEL SAFE
	-- json, not jsonb: the relay sends the stored text as it is; compact,
	-- in the design's field order, every string escaped by to_json
	RETURN ('{"symbol":' || to_json(symbol)::text || ',"price":' || price::text
			|| ',"timestamp":' || to_json(md._iso_utc(ts))::text
			|| ',"source":' || to_json(provider)::text
			|| ',"raw_response_id":' || coalesce(to_json(raw_response_id::text)::text, 'null')
			|| '}')::json;
COMMENT ON FUNCTION md._price_event(text, text, numeric, timestamptz, bigint) IS
	'the Kafka price event of a price (topic price-events)';

-- Creates md.<parent>_YYYYMM, the partition of md.<parent> for the UTC
-- month of ts, when missing: with storage parameters storage (empty: none),
-- then each statement of ddl run with the partition's name for %I.
CREATE FUNCTION md._ensure_month_partition(parent text, ts timestamptz, storage text,
	ddl text[])
	RETURNS regclass
	LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	lo timestamptz := date_trunc('month', ts, 'UTC');
	hi timestamptz := date_trunc('month', lo + interval '32 days', 'UTC');
	part text := parent || '_' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
	rel regclass;
	stmt text;
BEGIN
	rel := to_regclass('md.' || quote_ident(part));
	IF rel IS NOT NULL THEN
		RETURN rel;
	END IF;
	-- Two sessions may want the same month at once (two schedulers do, at
	-- every new month). A lock on the parent alone (not its partitions)
	-- that conflicts with itself (not with inserts) serialises them, and
	-- taking it makes this session read the catalog changes committed
	-- meanwhile: after an advisory lock to_regclass could still answer
	-- from a stale cache, and CREATE TABLE failed with "relation ...
	-- already exists".
	EXECUTE format('LOCK TABLE ONLY md.%I IN SHARE UPDATE EXCLUSIVE MODE', parent);
	rel := to_regclass('md.' || quote_ident(part));
	IF rel IS NULL THEN
		EXECUTE format('CREATE TABLE md.%I PARTITION OF md.%I FOR VALUES FROM (%L) TO (%L)',
					   part, parent, lo, hi)
			|| CASE WHEN storage <> '' THEN ' WITH (' || storage || ')' ELSE '' END;
		FOREACH stmt IN ARRAY ddl LOOP
			EXECUTE format(stmt, part);
		END LOOP;
		rel := to_regclass('md.' || quote_ident(part));
	END IF;
	RETURN rel;
END
$$;
COMMENT ON FUNCTION md._ensure_month_partition(text, timestamptz, text, text[]) IS
	'creates md.<parent>_YYYYMM, the partition of md.<parent> for the UTC month of ts, when missing, and runs its ddl';
REVOKE ALL ON FUNCTION md._ensure_month_partition(text, timestamptz, text, text[]) FROM PUBLIC;

-- Creates the monthly partition of md.prices holding ts (UTC months).
CREATE FUNCTION md._ensure_price_partition(ts timestamptz) RETURNS regclass
	LANGUAGE sql VOLATILE STRICT SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	RETURN md._ensure_month_partition('prices', ts, '', ARRAY[
		'ALTER TABLE md.%I ADD PRIMARY KEY (symbol, provider, ts)',
		-- the order of the moving averages (sink.c) and md_moving_average:
		-- their LIMIT stops after the window's rows instead of sorting
		-- the symbol's whole history
		'CREATE INDEX ON md.%I (symbol, ts DESC, provider)']);
COMMENT ON FUNCTION md._ensure_price_partition(timestamptz) IS
	'creates md.prices_YYYYMM, the partition of md.prices for the UTC month of ts, when missing';
REVOKE ALL ON FUNCTION md._ensure_price_partition(timestamptz) FROM PUBLIC;

-- No partition is created here: one made by this script would belong to the
-- extension, and pg_dump would then skip its rows.

-- Jobs are checked and normalised on the way in, with messages a user can act on.
CREATE FUNCTION md._polling_jobs_check() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.symbols := @extschema@._md_normalize_symbols(NEW.symbols);
	IF NEW.interval IS NULL OR NEW.interval NOT BETWEEN 1 AND 86400 THEN
		RAISE EXCEPTION 'polling interval must be between 1 and 86400 seconds, not %',
			coalesce(NEW.interval::text, 'null')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM md.providers p WHERE p.name = NEW.provider) THEN
		RAISE EXCEPTION 'unknown provider "%"', NEW.provider
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Providers are listed in md.providers.';
	END IF;
	-- a time that is not finite would stop every claim of the scheduler
	IF NOT isfinite(NEW.next_run_at) THEN
		RAISE EXCEPTION 'next_run_at must be a finite time, not %', NEW.next_run_at
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION md._polling_jobs_check() IS
	'normalises symbols and checks interval, provider and next_run_at of md.polling_jobs rows';

CREATE TRIGGER polling_jobs_check
	BEFORE INSERT OR UPDATE ON md.polling_jobs
	FOR EACH ROW EXECUTE FUNCTION md._polling_jobs_check();

CREATE FUNCTION md._wake_scheduler() RETURNS trigger
	AS 'MODULE_PATHNAME', 'md_wake_scheduler'
	LANGUAGE C;
COMMENT ON FUNCTION md._wake_scheduler() IS
	'wakes the scheduler when a change to md.polling_jobs commits';

CREATE TRIGGER polling_jobs_wake
	AFTER INSERT OR UPDATE OR DELETE ON md.polling_jobs
	FOR EACH STATEMENT EXECUTE FUNCTION md._wake_scheduler();

-- Ingest -------------------------------------------------------------------

CREATE FUNCTION @extschema@.md_ingest_price(
	symbol text, provider text, price numeric, ts timestamptz,
	volume numeric DEFAULT NULL, currency text DEFAULT NULL,
	raw_response_id bigint DEFAULT NULL)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'md_ingest_price'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.md_ingest_price(text, text, numeric, timestamptz, numeric, text, bigint) IS
	'stores one price through the idempotent sink; true when it was new';

CREATE FUNCTION @extschema@.md_ingest_prices(
	symbols text[], providers text[], prices numeric[], ts timestamptz[],
	volumes numeric[] DEFAULT NULL, currencies text[] DEFAULT NULL,
	raw_response_ids bigint[] DEFAULT NULL)
	RETURNS integer
	AS 'MODULE_PATHNAME', 'md_ingest_prices'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.md_ingest_prices(text[], text[], numeric[], timestamptz[], numeric[], text[], bigint[]) IS
	'stores a batch of prices (parallel arrays) through the idempotent sink; returns how many were new';

-- Reading prices -----------------------------------------------------------

CREATE FUNCTION @extschema@.md_price(symbol text, provider text DEFAULT NULL,
	max_age interval DEFAULT '1 minute')
	RETURNS numeric
	AS 'MODULE_PATHNAME', 'md_price'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.md_price(text, text, interval) IS
	'latest price of a symbol fetched within max_age (SQLSTATE MD001 when there is none)';

CREATE FUNCTION @extschema@.md_quote(symbol text, provider text DEFAULT NULL,
	max_age interval DEFAULT '1 minute',
	OUT symbol text, OUT price numeric, OUT ts timestamptz, OUT provider text,
	OUT fetched_at timestamptz, OUT age interval)
	RETURNS record
	AS 'MODULE_PATHNAME', 'md_quote'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.md_quote(text, text, interval) IS
	'latest price as a record: symbol, price, market time, provider, fetched_at and age';

CREATE FUNCTION @extschema@.md_history(symbol text, "from" timestamptz,
	"to" timestamptz DEFAULT now(), provider text DEFAULT NULL,
	"limit" integer DEFAULT 10000)
	RETURNS TABLE (ts timestamptz, price numeric, source text,
				   volume numeric, currency text)
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sym text := @extschema@._md_normalize_symbol(symbol);
BEGIN
	IF "from" IS NULL OR "to" IS NULL THEN
		RAISE EXCEPTION 'from and to must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF "from" > "to" THEN
		RAISE EXCEPTION 'from (%) is after to (%)', "from", "to"
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF "limit" IS NULL OR "limit" NOT BETWEEN 1 AND 1000000 THEN
		RAISE EXCEPTION 'limit must be between 1 and 1000000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
		SELECT p.ts, p.price, p.provider, p.volume, p.currency
		FROM md.prices p
		WHERE p.symbol = sym AND p.ts >= "from" AND p.ts <= "to"
		  AND (md_history.provider IS NULL OR p.provider = md_history.provider)
		ORDER BY p.ts, p.provider
		LIMIT "limit";
END
$$;
COMMENT ON FUNCTION @extschema@.md_history(text, timestamptz, timestamptz, text, integer) IS
	'prices of a symbol between from and to (inclusive), oldest first, at most limit rows; source is the provider';

CREATE FUNCTION @extschema@.md_moving_average(symbol text, "window" integer DEFAULT 5)
	RETURNS numeric
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sym text := @extschema@._md_normalize_symbol(symbol);
	result numeric;
BEGIN
	IF "window" IS NULL OR "window" NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'window must be between 1 and 1000 points, not %', coalesce("window"::text, 'null')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT a.average INTO result FROM md.symbol_averages a
		WHERE a.symbol = sym AND a."window" = md_moving_average."window";
	IF NOT FOUND THEN
		-- a window not kept by marketdata.average_windows: compute it
		SELECT avg(t.price) INTO result FROM (
			SELECT p.price FROM md.prices p WHERE p.symbol = sym
			ORDER BY p.ts DESC, p.provider LIMIT "window") t;
	END IF;
	IF result IS NULL THEN
		RAISE EXCEPTION 'no price for symbol "%"', sym
			USING ERRCODE = 'MD001',
				  HINT = 'Store one with md_ingest_price() or schedule polling with md_poll().';
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.md_moving_average(text, integer) IS
	'average of the symbol''s newest window prices (all providers)';

-- Polling jobs -------------------------------------------------------------

CREATE FUNCTION @extschema@.md_poll(symbols text[], "interval" integer, provider text)
	RETURNS bigint
	LANGUAGE sql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO md.polling_jobs (symbols, "interval", provider)
	VALUES (md_poll.symbols, md_poll."interval", md_poll.provider)
	RETURNING id;
END;
COMMENT ON FUNCTION @extschema@.md_poll(text[], integer, text) IS
	'schedules polling of symbols every interval seconds at provider; returns the job id';

-- API keys -----------------------------------------------------------------

CREATE FUNCTION @extschema@.md_create_api_key(name text, role text DEFAULT 'reader')
	RETURNS text
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key text := 'mdk_' || md._random_hex(24);
BEGIN
	IF name IS NULL OR role IS NULL THEN
		RAISE EXCEPTION 'name and role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF role NOT IN ('reader', 'writer', 'admin') THEN
		RAISE EXCEPTION 'unknown role "%"', role
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Roles are reader, writer and admin.';
	END IF;
	IF name !~ '^[A-Za-z0-9._@-]{1,64}$' THEN
		RAISE EXCEPTION 'invalid API key name "%"', left(name, 64)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A name is 1 to 64 letters, digits and . _ @ -';
	END IF;
	INSERT INTO md.api_keys (name, key_hash, key_prefix, role)
		VALUES (name, encode(sha256(convert_to(key, 'UTF8')), 'hex'), left(key, 12), role);
	RETURN key;
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'an API key named "%" exists already', name
		USING ERRCODE = 'unique_violation',
			  HINT = 'Revoke it with md_revoke_api_key() or choose another name.';
END
$$;
COMMENT ON FUNCTION @extschema@.md_create_api_key(text, text) IS
	'creates an API key with a role (reader, writer, admin) and returns it; only its SHA-256 is stored';

CREATE FUNCTION @extschema@.md_revoke_api_key(name text) RETURNS boolean
	LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH revoked AS (
		UPDATE md.api_keys k SET revoked_at = now()
		WHERE k.name = md_revoke_api_key.name AND k.revoked_at IS NULL
		RETURNING 1)
	SELECT count(*) > 0 FROM revoked;
END;
COMMENT ON FUNCTION @extschema@.md_revoke_api_key(text) IS
	'revokes the API key of that name; false when there was no active one';

CREATE FUNCTION @extschema@.md_api_key_role(key text) RETURNS text
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT k.role FROM md.api_keys k
	WHERE k.key_hash = encode(sha256(convert_to(md_api_key_role.key, 'UTF8')), 'hex')
	  AND k.revoked_at IS NULL;
END;
COMMENT ON FUNCTION @extschema@.md_api_key_role(text) IS
	'role of an active API key, NULL when the key is unknown or revoked';

REVOKE ALL ON FUNCTION @extschema@.md_create_api_key(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.md_revoke_api_key(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.md_api_key_role(text) FROM PUBLIC;

-- Fetching from providers -----------------------------------------------------

CREATE FUNCTION @extschema@.md_fetch(symbol text, provider text DEFAULT NULL,
	OUT symbol text, OUT provider text, OUT price numeric, OUT ts timestamptz,
	OUT currency text, OUT volume numeric, OUT error_class text, OUT message text,
	OUT http_status integer, OUT latency_ms double precision, OUT raw_response_id bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'md_fetch'
	LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;
COMMENT ON FUNCTION @extschema@.md_fetch(text, text) IS
	'fetches the symbol now from provider (failover by priority when NULL) and stores the price; one row per provider tried, the last is the outcome (error_class NULL on success)';

CREATE FUNCTION @extschema@.md_fetch_many(symbols text[], provider text DEFAULT NULL,
	OUT symbol text, OUT provider text, OUT price numeric, OUT ts timestamptz,
	OUT currency text, OUT volume numeric, OUT error_class text, OUT message text,
	OUT http_status integer, OUT latency_ms double precision, OUT raw_response_id bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'md_fetch_many'
	LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 100;
COMMENT ON FUNCTION @extschema@.md_fetch_many(text[], text) IS
	'fetches all symbols concurrently (each provider bounded by its max_concurrency) and stores the prices; one row per symbol and provider tried';

CREATE FUNCTION @extschema@.md_fetch_history(symbol text, "interval" interval,
	"from" timestamptz, "to" timestamptz, provider text DEFAULT NULL,
	OUT page integer, OUT kind text, OUT ts timestamptz, OUT open numeric,
	OUT high numeric, OUT low numeric, OUT close numeric, OUT volume numeric,
	OUT value numeric, OUT currency text, OUT error_class text, OUT message text,
	OUT http_status integer, OUT raw_response_id bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'md_fetch_history'
	LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1000;
COMMENT ON FUNCTION @extschema@.md_fetch_history(text, interval, timestamptz, timestamptz, text) IS
	'fetches the bars of symbol at interval in [from, to) from the history endpoint of provider (the first enabled failover provider with history when NULL), storing nothing but the raw responses; per page a row of kind page (value: its bars, error_class NULL when accepted), then its bars (kind bar) and events (kind split: value new shares per old; dividend: value per share)';

CREATE FUNCTION md._provider_health(
	OUT provider text, OUT consecutive_failures integer,
	OUT circuit_open_until timestamptz, OUT rate_limited_until timestamptz,
	OUT last_success_at timestamptz, OUT last_error_at timestamptz,
	OUT last_error_class text, OUT last_error text,
	OUT requests bigint, OUT failures bigint,
	OUT p50_latency_ms double precision, OUT p99_latency_ms double precision)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'md_provider_health'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION md._provider_health() IS
	'provider health of this database kept in shared memory since the server started (empty unless marketdata is preloaded)';

-- Operators' views ---------------------------------------------------------

-- The relay's published snapshot (the newest row of md.outbox_published);
-- nothing is published before the relay's first delivery report.
CREATE FUNCTION md._outbox_published_snapshot() RETURNS pg_snapshot
	LANGUAGE sql STABLE PARALLEL SAFE
	RETURN coalesce((SELECT snapshot FROM md.outbox_published ORDER BY id DESC LIMIT 1),
					'1:1:'::pg_snapshot);
COMMENT ON FUNCTION md._outbox_published_snapshot() IS
	'outbox rows of transactions visible in this snapshot are published';

-- The snapshot in which exactly what is visible in prev, plus what is
-- visible in cur from transactions below x, is visible: the relay's record
-- for a tick (prev to cur) delivered up to the transaction x, so that a
-- large tick is recorded in parts and a crash sends little again.
CREATE FUNCTION md._outbox_snapshot_through(prev pg_snapshot, cur pg_snapshot, x xid8)
	RETURNS pg_snapshot
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN (
		WITH running AS (
			SELECT t FROM pg_snapshot_xip(cur) t WHERE t < x
			UNION
			SELECT t FROM pg_snapshot_xip(prev) t WHERE t >= x),
		top AS (SELECT greatest(x, pg_snapshot_xmax(prev)) AS xmax)
		SELECT format('%s:%s:%s', least((SELECT min(t) FROM running), top.xmax), top.xmax,
					  (SELECT string_agg(t::text, ',' ORDER BY t) FROM running))::pg_snapshot
		FROM top);
COMMENT ON FUNCTION md._outbox_snapshot_through(pg_snapshot, pg_snapshot, xid8) IS
	'prev plus the transactions of cur below x: the relay''s record of a tick delivered up to x';

-- Called by the relay before it publishes: the published snapshot, after
-- taking over an outbox restored from another cluster, whose xids mean
-- nothing here. What that cluster had published is dropped; every other
-- row gets this transaction's xid, so it goes out once, in id order.
CREATE FUNCTION md._outbox_adopt() RETURNS pg_snapshot
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	here bigint := (SELECT system_identifier FROM pg_control_system());
	-- taken before this transaction has an xid, so its own rows are not
	-- visible in it
	fresh pg_snapshot := pg_current_snapshot();
	p record;
BEGIN
	SELECT snapshot, system_identifier, at INTO p
		FROM md.outbox_published ORDER BY id DESC LIMIT 1;
	IF NOT FOUND THEN
		RETURN '1:1:'::pg_snapshot;
	ELSIF p.system_identifier = here THEN
		RETURN p.snapshot;
	END IF;
	RAISE LOG 'marketdata relay: outbox restored from another cluster (system identifier %), taking it over',
		p.system_identifier;
	DELETE FROM md.outbox WHERE created_at <= p.at AND pg_visible_in_snapshot(xact, p.snapshot);
	UPDATE md.outbox SET xact = pg_current_xact_id();
	INSERT INTO md.outbox_published (snapshot, system_identifier) VALUES (fresh, here);
	RETURN fresh;
END
$$;
REVOKE ALL ON FUNCTION md._outbox_adopt() FROM PUBLIC;
COMMENT ON FUNCTION md._outbox_adopt() IS
	'the relay''s start: the published snapshot, taking over an outbox restored from another cluster';

-- The outbox rows not visible in a snapshot: of transactions begun after
-- it, or running then. Two index look-ups, not a range from the
-- snapshot's xmin, which a long transaction would stretch over everything
-- published since it began. Inlined into its callers (SQL, STABLE).
CREATE FUNCTION md._outbox_pending(snapshot pg_snapshot) RETURNS SETOF md.outbox
	LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT * FROM md.outbox WHERE xact >= pg_snapshot_xmax(snapshot)
	UNION ALL
	-- OFFSET 0 keeps the look-up per running transaction: pulled up, it
	-- became a hash join over a scan of the whole outbox
	SELECT o.* FROM pg_snapshot_xip(snapshot) x,
		LATERAL (SELECT * FROM md.outbox WHERE xact = x OFFSET 0) o
$$;
COMMENT ON FUNCTION md._outbox_pending(pg_snapshot) IS
	'outbox rows of the transactions not visible in snapshot';

CREATE VIEW md.outbox_pending AS
	SELECT p.id, p.xact, p.symbol, p.payload, p.created_at
	FROM md._outbox_pending(md._outbox_published_snapshot()) p;
COMMENT ON VIEW md.outbox_pending IS
	'price events not yet published to Kafka (the relay''s backlog)';

CREATE FUNCTION md._worker_status(
	OUT pid integer, OUT dboid oid, OUT worker text, OUT state text,
	OUT started_at timestamptz, OUT last_loop timestamptz, OUT processed bigint,
	OUT backlog bigint, OUT last_error text, OUT last_error_at timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'md_worker_status'
	LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION md._worker_status() IS
	'the shared-memory state of every running marketdata worker';

CREATE VIEW md.worker_status AS
	SELECT w.pid, w.worker, d.datname AS database, w.state, w.started_at, w.last_loop,
		   w.processed, w.backlog, w.last_error, w.last_error_at,
		   a.wait_event, a.query AS activity
	FROM md._worker_status() w
	LEFT JOIN pg_catalog.pg_database d ON d.oid = w.dboid
	LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = w.pid
	UNION ALL
	SELECT a.pid, 'launcher', NULL, 'running', a.backend_start, NULL, NULL, NULL, NULL, NULL,
		   a.wait_event, NULL
	FROM pg_catalog.pg_stat_activity a
	WHERE a.backend_type = 'marketdata launcher';
COMMENT ON VIEW md.worker_status IS
	'marketdata background workers: state, last loop, items processed, backlog, last error';

CREATE FUNCTION md._cache_status(
	OUT writes bigint, OUT failures bigint, OUT last_write_at timestamptz,
	OUT last_error text, OUT last_error_at timestamptz)
	RETURNS record
	AS 'MODULE_PATHNAME', 'md_cache_status'
	LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION md._cache_status() IS
	'counters of the Redis write-through, shared by all processes';

CREATE VIEW md.cache_status AS
	SELECT current_setting('marketdata.redis_url', true) <> '' AS enabled, s.*
	FROM md._cache_status() s;
COMMENT ON VIEW md.cache_status IS
	'Redis write-through: whether it is on, prices written, failures and the last error';

CREATE VIEW md.kafka_status AS
	SELECT s.id AS subscription_id, coalesce(o.topic, s.topic) AS topic,
		   coalesce(o.group_id, s.group_id) AS group_id, o.partition,
		   o.next_offset AS stored_offset, o.high_watermark,
		   GREATEST(o.high_watermark - o.next_offset, 0) AS lag,
		   o.last_message_at, o.updated_at, s.enabled, s.error,
		   coalesce(g.lost, 0) AS lost_messages, g.last_gap_at
	FROM md.kafka_offsets o
	FULL JOIN md.kafka_subscriptions s ON s.topic = o.topic AND s.group_id = o.group_id
	LEFT JOIN LATERAL (
		SELECT sum(k.last_offset - k.first_offset + 1) AS lost, max(k.detected_at) AS last_gap_at
		FROM md.kafka_gaps k
		WHERE k.topic = o.topic AND k.group_id = o.group_id AND k.partition = o.partition) g ON true;
COMMENT ON VIEW md.kafka_status IS
	'Kafka consumption per topic and partition: stored offset, high watermark, lag, last message time, messages lost to the broker''s retention (md.kafka_gaps), and why a subscription cannot be consumed (one row with no partition until it is assigned)';

CREATE VIEW md.price_status AS
	SELECT l.symbol, l.provider, l.price, l.ts, l.fetched_at,
		   now() - l.fetched_at AS age
	FROM md.latest_prices l;
COMMENT ON VIEW md.price_status IS
	'latest price of every symbol and provider with its age';

CREATE VIEW md.provider_status AS
	SELECT p.name AS provider, p.enabled, p.priority, p.failover,
		   CASE WHEN NOT p.enabled THEN 'disabled'
				WHEN h.circuit_open_until > now() THEN 'circuit_open'
				WHEN h.rate_limited_until > now() THEN 'rate_limited'
				WHEN h.consecutive_failures > 0 THEN 'failing'
				WHEN h.provider IS NULL AND ok.received_at IS NULL THEN 'unknown'
				ELSE 'ok' END AS state,
		   greatest(h.last_success_at, ok.received_at) AS last_success_at,
		   greatest(h.last_error_at, bad.received_at) AS last_error_at,
		   CASE WHEN bad.received_at > h.last_error_at OR h.last_error_at IS NULL
				THEN bad.error_class ELSE h.last_error_class END AS last_error_class,
		   h.last_error,
		   coalesce(h.consecutive_failures, 0) AS consecutive_failures,
		   h.circuit_open_until, h.rate_limited_until,
		   coalesce(h.requests, 0) AS requests, coalesce(h.failures, 0) AS failures,
		   h.p50_latency_ms, h.p99_latency_ms
	FROM md.providers p
	LEFT JOIN md._provider_health() h ON h.provider = p.name
	LEFT JOIN LATERAL (
		SELECT r.received_at FROM md.raw_responses r
		WHERE r.provider = p.name
		  AND (r.error_class IS NULL OR r.error_class IN ('unknown_symbol', 'no_data'))
		ORDER BY r.received_at DESC, r.id DESC LIMIT 1) ok ON true
	LEFT JOIN LATERAL (
		SELECT r.received_at, r.error_class FROM md.raw_responses r
		WHERE r.provider = p.name
		  AND r.error_class IN ('rate_limited', 'auth_failed', 'unavailable', 'malformed')
		ORDER BY r.received_at DESC, r.id DESC LIMIT 1) bad ON true;
COMMENT ON VIEW md.provider_status IS
	'health of each provider: state (ok, failing, circuit_open, rate_limited, disabled, unknown), last success and error, consecutive failures, p50/p99 latency of the last 256 requests; counters restart with the server, last success/error also come from md.raw_responses';

-- REST API helpers ---------------------------------------------------------
-- The Kore app (api/) asks these, one call per request, and sends their
-- JSON as the answer's body: the shapes of the REST contract live here,
-- next to the functions they wrap. Errors keep their SQLSTATEs; the API
-- maps them to HTTP statuses (docs/errors.md).
--
-- They are the API's whole privilege: SECURITY DEFINER with a pinned
-- search_path, EXECUTE revoked from PUBLIC, granted to the API's role by
-- md_api_grant(). That role needs nothing on any table, so its password
-- cannot rewrite md.providers.base_url (where the provider keys are
-- sent), read md.api_keys or delete prices (docs/security.md).

-- PL/pgSQL, not SQL: a SQL function called in a select list is planned
-- again on every call (its plans live only as long as the calling query),
-- while PL/pgSQL keeps its plan for the session. GET /prices/latest's cache
-- misses call this once per request (bench/README.md, "api").
CREATE FUNCTION md._api_latest(symbol text, provider text, max_age interval)
	RETURNS text
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	answer text;
BEGIN
	SELECT md._price_json(q.symbol, q.price, q.ts, q.provider) INTO answer
	FROM @extschema@.md_quote(_api_latest.symbol, _api_latest.provider,
		_api_latest.max_age) q;
	RETURN answer;
END
$$;
COMMENT ON FUNCTION md._api_latest(text, text, interval) IS
	'GET /prices/latest: md_quote() as the JSON answer (md._price_json, the same bytes the sink caches in Redis)';

CREATE FUNCTION md._api_history(symbol text, "from" text, "to" text,
	provider text, "limit" integer)
	RETURNS text
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t_to timestamptz := coalesce("to"::timestamptz, now());
	t_from timestamptz := coalesce("from"::timestamptz, t_to - interval '1 day');
	n integer := coalesce("limit", 100);
	found_rows bigint;
	last_ts timestamptz;
	next_from timestamptz;
	points jsonb;
BEGIN
	IF n NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'limit must be between 1 and 1000, not %', n
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- one row more than asked tells whether there is a next page; the page
	-- then ends before that row's time, so a page never splits a timestamp
	-- (unless one timestamp alone has more than limit rows: then the rest
	-- of that timestamp is skipped)
	SELECT count(*), max(h.ts) INTO found_rows, last_ts
		FROM @extschema@.md_history(symbol, t_from, t_to, provider, n + 1) h;
	IF found_rows > n THEN
		next_from := last_ts;
		IF NOT EXISTS (SELECT 1 FROM @extschema@.md_history(symbol, t_from, t_to, provider, n) h
					   WHERE h.ts < last_ts) THEN
			next_from := last_ts + interval '1 microsecond';
		END IF;
	END IF;
	SELECT coalesce(jsonb_agg(jsonb_build_object('timestamp', md._iso_utc(h.ts),
			'price', h.price, 'source', h.source, 'volume', h.volume,
			'currency', h.currency) ORDER BY h.ts, h.source), '[]'::jsonb)
		INTO points
		FROM @extschema@.md_history(symbol, t_from, t_to, provider, n) h
		WHERE next_from IS NULL OR h.ts < next_from;
	RETURN json_build_object('symbol', @extschema@._md_normalize_symbol(symbol),
		'from', md._iso_utc(t_from), 'to', md._iso_utc(t_to),
		'provider', provider, 'limit', n, 'points', points,
		'next_from', md._iso_utc(next_from))::text;
END
$$;
COMMENT ON FUNCTION md._api_history(text, text, text, text, integer) IS
	'GET /prices/history: a page of md_history() (from defaults to to - 1 day, to to now, limit to 100); next_from starts the next page';

CREATE FUNCTION md._api_average(symbol text, "window" integer) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT json_build_object('symbol', @extschema@._md_normalize_symbol(_api_average.symbol),
		'window', coalesce(_api_average."window", 5),
		'average', trim_scale(@extschema@.md_moving_average(_api_average.symbol,
			coalesce(_api_average."window", 5))))::text;
END;
COMMENT ON FUNCTION md._api_average(text, integer) IS
	'GET /prices/average: md_moving_average() as JSON {symbol, window, average}';

CREATE FUNCTION md._api_job(job md.polling_jobs) RETURNS jsonb
	LANGUAGE sql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT jsonb_build_object('job_id', 'poll_' || (job).id,
		'config', jsonb_build_object('symbols', to_jsonb((job).symbols),
			'interval', (job)."interval", 'provider', (job).provider),
		'enabled', (job).enabled,
		'next_run_at', md._iso_utc((job).next_run_at),
		'last_run_at', md._iso_utc((job).last_run_at),
		'last_status', (job).last_status, 'last_error', (job).last_error,
		'created_at', md._iso_utc((job).created_at));
END;
COMMENT ON FUNCTION md._api_job(md.polling_jobs) IS
	'a polling job as the REST API shows it (job_id poll_<id>)';

CREATE FUNCTION md._api_poll_create(symbols text[], "interval" integer, provider text)
	RETURNS text
	LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH job AS (
		INSERT INTO md.polling_jobs (symbols, "interval", provider)
		VALUES (_api_poll_create.symbols, _api_poll_create."interval",
				_api_poll_create.provider)
		RETURNING *)
	SELECT (md._api_job(job) || '{"status":"accepted"}'::jsonb)::text FROM job;
END;
COMMENT ON FUNCTION md._api_poll_create(text[], integer, text) IS
	'POST /prices/poll: schedules a polling job (as md_poll()) and returns it as JSON with status accepted';

CREATE FUNCTION md._api_poll_get(id bigint) RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT (md._api_job(j) || jsonb_build_object('status',
			CASE WHEN j.enabled THEN 'active' ELSE 'disabled' END,
			'runs', coalesce((SELECT jsonb_agg(jsonb_build_object(
				'status', r.status, 'started_at', md._iso_utc(r.started_at),
				'finished_at', md._iso_utc(r.finished_at),
				'symbols_ok', r.symbols_ok, 'symbols_failed', r.symbols_failed,
				'message', r.message) ORDER BY r.started_at DESC)
				FROM (SELECT * FROM md.job_runs r0 WHERE r0.job_id = j.id
					  ORDER BY r0.started_at DESC LIMIT 10) r), '[]'::jsonb)))::text
	FROM md.polling_jobs j WHERE j.id = _api_poll_get.id;
END;
COMMENT ON FUNCTION md._api_poll_get(bigint) IS
	'GET /prices/poll/{job_id}: the job and its last 10 runs as JSON, NULL when there is no such job';

CREATE FUNCTION md._api_poll_delete(id bigint) RETURNS text
	LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH job AS (DELETE FROM md.polling_jobs j WHERE j.id = _api_poll_delete.id
				 RETURNING *)
	SELECT (md._api_job(job) || '{"status":"stopped"}'::jsonb)::text FROM job;
END;
COMMENT ON FUNCTION md._api_poll_delete(bigint) IS
	'DELETE /prices/poll/{job_id}: stops (deletes) the job; its JSON with status stopped, NULL when there was none';

CREATE FUNCTION md._api_ready() RETURNS text
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	kafka jsonb;
	providers jsonb;
	has_status boolean := to_regclass('md.provider_status') IS NOT NULL;
BEGIN
	SELECT jsonb_build_object(
		'status', CASE WHEN count(*) FILTER (WHERE w.worker ~ 'relay|consumer') > 0
					   THEN 'ok' ELSE 'not_running' END,
		'workers', coalesce(jsonb_agg(jsonb_build_object('worker', w.worker,
			'state', w.state, 'started_at', md._iso_utc(w.started_at))), '[]'::jsonb))
		INTO kafka FROM md.worker_status w;
	IF has_status THEN
		-- md.provider_status, when the providers' view exists
		EXECUTE $q$SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]')
				 FROM md.provider_status s$q$ INTO providers;
	ELSE
		SELECT coalesce(jsonb_agg(jsonb_build_object('name', p.name,
				'status', CASE WHEN p.enabled THEN 'enabled' ELSE 'disabled' END,
				'priority', p.priority) ORDER BY p.priority), '[]'::jsonb)
			INTO providers FROM md.providers p;
	END IF;
	RETURN jsonb_build_object('kafka', kafka, 'providers', providers)::text;
END
$$;
COMMENT ON FUNCTION md._api_ready() IS
	'GET /health/ready: Kafka workers (md.worker_status) and providers (md.provider_status when it exists, else md.providers) as JSON';

CREATE FUNCTION md._api_key_role(key_sha256 text) RETURNS text
	LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT k.role FROM md.api_keys k
	WHERE k.key_hash = _api_key_role.key_sha256 AND k.revoked_at IS NULL;
END;
COMMENT ON FUNCTION md._api_key_role(text) IS
	'the API''s key check: role of the active API key with that SHA-256 (hex), NULL when none; the key itself never reaches the database';

-- GET /prices/stream's resume. An event's *id* is
-- "<market time in µs since the epoch>:<provider>:<symbol>", the key of its
-- md.prices row; the row's ingested_at (its transaction's start) orders
-- the stream, and the sink publishes one transaction's prices ordered by
-- symbol and provider. So "after the id" is every row later in
-- (ingested_at, symbol, provider), newest per provider and transaction as
-- the sink publishes them, within the last window_s seconds. The first
-- line says "complete", or "partial" when the id is unknown, older than
-- the window, or max_events (the most sent) follow it; then one line per event:
-- its id, a space, its price event (md._price_event).
CREATE FUNCTION md._api_stream_replay(symbols text[], after text, window_s integer,
	max_events integer)
	RETURNS text
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	parts text[] := string_to_array(after, ':');
	since timestamptz := now() - make_interval(secs => window_s);
	c_at timestamptz;
	c_symbol text := '';
	c_provider text := '';
	events text;
	n bigint;
BEGIN
	IF cardinality(parts) = 3 AND parts[1] ~ '^[0-9]{1,18}$' THEN
		SELECT p.ingested_at INTO c_at FROM md.prices p
		WHERE p.symbol = parts[3] AND p.provider = parts[2]
		  AND p.ts = 'epoch'::timestamptz + parts[1]::bigint * interval '1 microsecond';
	END IF;
	IF c_at IS NOT NULL AND c_at >= since THEN
		c_symbol := parts[3];
		c_provider := parts[2];
	ELSE
		c_at := NULL;
	END IF;
	SELECT string_agg(e.line, E'\n' ORDER BY e.ingested_at, e.symbol, e.provider),
		   count(*)
	  INTO events, n
	  FROM (SELECT DISTINCT ON (p.ingested_at, p.symbol, p.provider)
				   p.ingested_at, p.symbol, p.provider,
				   (extract(epoch FROM p.ts) * 1000000)::bigint || ':' || p.provider
				   || ':' || p.symbol || ' '
				   || md._price_event(p.symbol, p.provider, p.price, p.ts,
									  p.raw_response_id)::text AS line
			  FROM md.prices p
			 WHERE p.symbol = ANY (symbols) AND p.ingested_at >= since
			   AND (c_at IS NULL
					OR (p.ingested_at, p.symbol, p.provider) > (c_at, c_symbol, c_provider))
			 ORDER BY p.ingested_at, p.symbol, p.provider, p.ts DESC
			 LIMIT max_events) e;
	RETURN CASE WHEN c_at IS NULL OR n >= max_events THEN 'partial' ELSE 'complete' END
		   || coalesce(E'\n' || events, '');
END
$$;
COMMENT ON FUNCTION md._api_stream_replay(text[], text, integer, integer) IS
	'GET /prices/stream resume: the price events after an event id within a window, one per line after a "complete" or "partial" line';

REVOKE ALL ON FUNCTION md._api_latest(text, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_history(text, text, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_average(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_poll_create(text[], integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_poll_get(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_poll_delete(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_ready() FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_key_role(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_stream_replay(text[], text, integer, integer) FROM PUBLIC;

-- Every SECURITY DEFINER md._api_* function, and USAGE on md to reach
-- them: what the API's database role may do, and all of it. Run by the
-- superuser (docker/postgres/init-primary.sql, test/run.sh, the tests).
CREATE FUNCTION @extschema@.md_api_grant(api_role regrole) RETURNS integer
	LANGUAGE plpgsql VOLATILE STRICT
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	fn regprocedure;
	n integer := 0;
BEGIN
	EXECUTE format('GRANT USAGE ON SCHEMA md TO %s', api_role);
	FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
			  WHERE p.pronamespace = 'md'::regnamespace AND p.prosecdef
				AND p.proname LIKE '\_api\_%'
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', fn, api_role);
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.md_api_grant(regrole) IS
	'lets a role run the REST API: USAGE on schema md and EXECUTE on the md._api_* functions, nothing on any table; returns how many functions';
REVOKE ALL ON FUNCTION @extschema@.md_api_grant(regrole) FROM PUBLIC;

-- Retention ------------------------------------------------------------------

-- A retention setting (marketdata.*_retention, seconds) as an interval;
-- NULL when it is 0 (kept for ever) or unset.
CREATE FUNCTION md._retention_setting(name text) RETURNS interval
	LANGUAGE sql STABLE PARALLEL SAFE
	RETURN nullif(coalesce(current_setting('marketdata.' || name, true), '0'), '0')::interval;
COMMENT ON FUNCTION md._retention_setting(text) IS
	'the retention setting marketdata.<name> as an interval, NULL when 0 (kept for ever)';

-- The first instant of the month of a partition md.prices_YYYYMM or
-- md.bars_YYYYMM, UTC.
CREATE FUNCTION md._partition_month(partition name) RETURNS timestamptz
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	RETURN to_date(right(partition, 6), 'YYYYMM')::timestamp AT TIME ZONE 'UTC';
COMMENT ON FUNCTION md._partition_month(name) IS
	'start (UTC) of the month a partition md.prices_YYYYMM or md.bars_YYYYMM holds';

-- One bounded step of row retention: at most "batch" rows deleted per table,
-- by its time index, oldest first. Deleting old rows conflicts with no
-- writer (they insert new ones). Returns how many rows it removed (0:
-- nothing is left to remove).
CREATE FUNCTION md._retention_step(batch integer) RETURNS bigint
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ok_keep interval := md._retention_setting('raw_response_retention');
	error_keep interval := coalesce(md._retention_setting('raw_response_error_retention'), ok_keep);
	runs_keep interval := md._retention_setting('job_run_retention');
	dead_keep interval := md._retention_setting('dead_letter_retention');
	gap_keep interval := md._retention_setting('kafka_gap_retention');
	n bigint;
	total bigint := 0;
BEGIN
	-- md.raw_responses: errors may be kept longer than successes
	n := 0;
	IF ok_keep IS NOT NULL THEN
		WITH d AS (
			DELETE FROM md.raw_responses r WHERE r.id IN (
				SELECT o.id FROM md.raw_responses o
				WHERE o.received_at < now() - least(ok_keep, error_keep)
				  AND o.received_at < now() - CASE WHEN o.error_class IS NULL THEN ok_keep ELSE error_keep END
				ORDER BY o.received_at LIMIT batch)
			RETURNING 1)
		SELECT count(*) INTO n FROM d;
	END IF;
	-- oldest kept: of the successes, the errors being meant to stay longer
	PERFORM md._retention_record('md.raw_responses', ok_keep, n, 0,
		(SELECT min(received_at) FROM md.raw_responses WHERE error_class IS NULL));
	total := total + n;

	-- md.job_runs: finished runs; a run still running is never removed
	n := 0;
	IF runs_keep IS NOT NULL THEN
		WITH d AS (
			DELETE FROM md.job_runs r WHERE r.id IN (
				SELECT o.id FROM md.job_runs o
				WHERE o.started_at < now() - runs_keep AND o.status <> 'running'
				ORDER BY o.started_at LIMIT batch)
			RETURNING 1)
		SELECT count(*) INTO n FROM d;
	END IF;
	-- oldest kept: of the finished runs (md.alerts tells of old running ones)
	PERFORM md._retention_record('md.job_runs', runs_keep, n, 0,
		(SELECT min(started_at) FROM md.job_runs WHERE status <> 'running'));
	total := total + n;

	-- md.dead_letters
	n := 0;
	IF dead_keep IS NOT NULL THEN
		WITH d AS (
			DELETE FROM md.dead_letters r WHERE r.id IN (
				SELECT o.id FROM md.dead_letters o
				WHERE o.received_at < now() - dead_keep
				ORDER BY o.received_at LIMIT batch)
			RETURNING 1)
		SELECT count(*) INTO n FROM d;
	END IF;
	PERFORM md._retention_record('md.dead_letters', dead_keep, n, 0,
		(SELECT min(received_at) FROM md.dead_letters));
	total := total + n;

	-- md.kafka_gaps (few rows: the time is not indexed)
	n := 0;
	IF gap_keep IS NOT NULL THEN
		WITH d AS (
			DELETE FROM md.kafka_gaps r WHERE r.id IN (
				SELECT o.id FROM md.kafka_gaps o
				WHERE o.detected_at < now() - gap_keep
				ORDER BY o.id LIMIT batch)
			RETURNING 1)
		SELECT count(*) INTO n FROM d;
	END IF;
	PERFORM md._retention_record('md.kafka_gaps', gap_keep, n, 0,
		(SELECT min(detected_at) FROM md.kafka_gaps));
	total := total + n;

	RETURN total;
END
$$;
COMMENT ON FUNCTION md._retention_step(integer) IS
	'one bounded step of row retention (at most batch rows of each table); returns how many rows it removed';
REVOKE ALL ON FUNCTION md._retention_step(integer) FROM PUBLIC;

-- Partition retention: the months of md.prices (md.prices_YYYYMM) that
-- ended before now - marketdata.price_retention are dropped, and those of
-- md.bars (md.bars_YYYYMM) before now - marketdata.bar_retention. DROP locks
-- md.prices: it waits at most 20 ms for running writers (lock_timeout),
-- so writers queue behind it no longer, and a month not dropped now is
-- dropped next time. Commit right after: the lock lasts until then.
CREATE FUNCTION md._retention_partitions() RETURNS bigint
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	part record;
	dropped integer;
	total integer := 0;
	caller_lock_timeout text := current_setting('lock_timeout');
BEGIN
	-- bars first: the sink locks md.bars (its MERGE) before md.prices (its
	-- insert), and a drop holds its lock to the commit; in the other order
	-- writers holding md.bars would wait on our md.prices lock
	FOR t IN SELECT * FROM (VALUES
			(1, 'md.bars'::regclass, '^bars_[0-9]{6}$', md._retention_setting('bar_retention')),
			(2, 'md.prices'::regclass, '^prices_[0-9]{6}$', md._retention_setting('price_retention')))
			v(n, parent, pattern, keep) ORDER BY n
	LOOP
		dropped := 0;
		IF t.keep IS NOT NULL THEN
			FOR part IN
				SELECT c.oid::regclass AS rel
				FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
				WHERE i.inhparent = t.parent AND c.relname ~ t.pattern
				  AND md._partition_month(c.relname) + interval '1 month' <= now() - t.keep
				ORDER BY c.relname
			LOOP
				BEGIN
					PERFORM set_config('lock_timeout', '20ms', true);
					EXECUTE format('DROP TABLE %s', part.rel);
					dropped := dropped + 1;
				EXCEPTION WHEN lock_not_available THEN
					-- writers hold the parent: next time
					EXIT;
				END;
			END LOOP;
			PERFORM set_config('lock_timeout', caller_lock_timeout, true);
		END IF;
		-- the oldest month held (min(ts) would read every partition)
		PERFORM md._retention_record(t.parent::text, t.keep, 0, dropped,
			(SELECT min(md._partition_month(c.relname))
			 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			 WHERE i.inhparent = t.parent AND c.relname ~ t.pattern));
		total := total + dropped;
	END LOOP;
	RETURN total;
END
$$;
COMMENT ON FUNCTION md._retention_partitions() IS
	'drops the months of md.prices older than marketdata.price_retention and of md.bars older than marketdata.bar_retention (waiting at most 20 ms for each lock); returns how many';
REVOKE ALL ON FUNCTION md._retention_partitions() FROM PUBLIC;

CREATE FUNCTION md._retention_record(tbl text, keep interval, removed bigint,
	partitions integer, oldest timestamptz) RETURNS void
	LANGUAGE sql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO md.retention_status AS s (table_name, retention, rows_removed,
		partitions_removed, last_run_at, oldest_kept)
	VALUES (tbl, keep, removed, partitions, now(), oldest)
	ON CONFLICT (table_name) DO UPDATE SET
		retention = excluded.retention,
		rows_removed = s.rows_removed + excluded.rows_removed,
		partitions_removed = s.partitions_removed + excluded.partitions_removed,
		last_run_at = excluded.last_run_at,
		oldest_kept = excluded.oldest_kept;
END;
COMMENT ON FUNCTION md._retention_record(text, interval, bigint, integer, timestamptz) IS
	'adds one retention step of a table to md.retention_status';
REVOKE ALL ON FUNCTION md._retention_record(text, interval, bigint, integer, timestamptz) FROM PUBLIC;

-- By hand: retention now, to the end, in this one transaction (the worker
-- commits after each step instead). Run it on its own, not inside a longer
-- transaction: a dropped month's lock on md.prices lasts until commit.
CREATE FUNCTION @extschema@.md_retention_run() RETURNS SETOF md.retention_status
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	batch integer := coalesce(current_setting('marketdata.retention_batch_size', true), '10000')::integer;
BEGIN
	WHILE md._retention_step(batch) > 0 LOOP
	END LOOP;
	-- last: its lock on md.prices lasts until the end of the transaction
	PERFORM md._retention_partitions();
	RETURN QUERY SELECT * FROM md.retention_status ORDER BY table_name;
END
$$;
COMMENT ON FUNCTION @extschema@.md_retention_run() IS
	'applies every retention setting now and returns md.retention_status (admin only; the retention worker does the same every marketdata.retention_interval)';
REVOKE ALL ON FUNCTION @extschema@.md_retention_run() FROM PUBLIC;

-- Operator controls -----------------------------------------------------------

CREATE FUNCTION md._provider_health_reset(provider text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'md_provider_health_reset'
	LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION md._provider_health_reset(text) IS
	'forgets the provider''s failures, open circuit, Retry-After and spent request budget in this database; false when it had none';
REVOKE ALL ON FUNCTION md._provider_health_reset(text) FROM PUBLIC;

CREATE FUNCTION @extschema@.md_provider_reset(provider text) RETURNS boolean
	LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM md.providers p WHERE p.name = md_provider_reset.provider) THEN
		RAISE EXCEPTION 'unknown provider "%"', provider
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The providers are the rows of md.providers.';
	END IF;
	RETURN md._provider_health_reset(provider);
END
$$;
COMMENT ON FUNCTION @extschema@.md_provider_reset(text) IS
	'clears a provider''s circuit breaker and rate-limit state (Retry-After, request budget) so that it is asked again at once (admin only)';
REVOKE ALL ON FUNCTION @extschema@.md_provider_reset(text) FROM PUBLIC;

CREATE FUNCTION @extschema@.md_worker_restart(kind text) RETURNS integer
	LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
BEGIN
	IF kind NOT IN ('scheduler', 'relay', 'consumer', 'retention', 'backfill') THEN
		RAISE EXCEPTION 'unknown worker kind "%"', kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The kinds are scheduler, relay, consumer, retention and backfill.';
	END IF;
	-- the launcher starts them again within a second or two
	SELECT count(*) INTO n FROM md.worker_status w
	WHERE w.worker = kind AND w.database = current_database() AND pg_terminate_backend(w.pid);
	RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.md_worker_restart(text) IS
	'stops this database''s workers of a kind (scheduler, relay, consumer, retention, backfill) for the launcher to start again; returns how many (admin only)';
REVOKE ALL ON FUNCTION @extschema@.md_worker_restart(text) FROM PUBLIC;

-- What an operator alerts on, one row per measure: the growing tables'
-- sizes, how far retention is behind its setting, the age of the oldest
-- unpublished outbox event, the consumer's lag, the oldest run under way.
CREATE VIEW md.alerts AS
	SELECT 'table_bytes' AS measure, t.name AS subject,
		   (SELECT sum(pg_catalog.pg_total_relation_size(p.relid))
			FROM (SELECT t.name::regclass AS relid
				  UNION SELECT relid FROM pg_catalog.pg_partition_tree(t.name::regclass)) p)::float8 AS value
	FROM unnest(ARRAY['md.raw_responses', 'md.prices', 'md.job_runs', 'md.dead_letters',
					  'md.outbox', 'md.outbox_published', 'md.polling_jobs', 'md.bars',
					  'md.kafka_gaps']) t(name)
	UNION ALL
	-- seconds the oldest row kept is past its table's retention
	SELECT 'retention_lag_seconds', r.table_name,
		   greatest(extract(epoch FROM now() - r.retention - r.oldest_kept), 0)::float8
	FROM md.retention_status r WHERE r.retention IS NOT NULL
	UNION ALL
	SELECT 'outbox_backlog_age_seconds', 'md.outbox',
		   coalesce(extract(epoch FROM now() - min(o.created_at)), 0)::float8
	FROM md.outbox_pending o
	UNION ALL
	SELECT 'consumer_lag_messages', k.topic || '/' || k.group_id,
		   sum(k.lag)::float8
	FROM md.kafka_status k GROUP BY k.topic, k.group_id
	UNION ALL
	SELECT 'oldest_running_job_run_seconds', 'md.job_runs',
		   coalesce(extract(epoch FROM now() - min(j.started_at)), 0)::float8
	FROM md.job_runs j WHERE j.status = 'running';
COMMENT ON VIEW md.alerts IS
	'measures to alert on: table_bytes per growing table, retention_lag_seconds per table, outbox_backlog_age_seconds, consumer_lag_messages per topic and group, oldest_running_job_run_seconds';

-- /metrics: md.alerts for the API's role, which reads no table
CREATE FUNCTION md._api_alerts() RETURNS text
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	RETURN (SELECT coalesce(json_agg(json_build_array(a.measure, a.subject, a.value))::text, '[]')
			FROM md.alerts a);
COMMENT ON FUNCTION md._api_alerts() IS
	'md.alerts as a JSON array of [measure, subject, value], for the API''s /metrics';
REVOKE ALL ON FUNCTION md._api_alerts() FROM PUBLIC;
