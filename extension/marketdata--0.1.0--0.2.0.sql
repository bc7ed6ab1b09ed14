-- extension/marketdata--0.1.0--0.2.0.sql
--	Upgrade of an installed 0.1.0 (extension/marketdata--0.1.0.sql) to 0.2.0.
--
--	Every change made to extension/schema.sql or extension/functions.sql for
--	0.2.0 is made here too, in the same commit, so that an upgraded database
--	equals a fresh install (test/t/040_upgrade.pl compares their dumps).
--	New columns go at the end of their table in schema.sql, where ALTER TABLE
--	ADD COLUMN puts them here.

\echo Use "ALTER EXTENSION marketdata UPDATE TO '0.2.0'" to load this file. \quit

-- md.polling_jobs without bloat: claims and finishes are HOT updates.
DROP INDEX md.polling_jobs_due_idx;
ALTER TABLE md.polling_jobs SET (fillfactor = 50);

-- The API's database role runs the SECURITY DEFINER md._api_* functions and
-- nothing else (md_api_grant); the API sends the key's SHA-256, not the key.
ALTER FUNCTION md._api_latest(text, text, interval) SECURITY DEFINER;
ALTER FUNCTION md._api_history(text, text, text, text, integer) SECURITY DEFINER;
ALTER FUNCTION md._api_average(text, integer) SECURITY DEFINER;
ALTER FUNCTION md._api_poll_create(text[], integer, text) SECURITY DEFINER;
ALTER FUNCTION md._api_poll_get(bigint) SECURITY DEFINER;
ALTER FUNCTION md._api_poll_delete(bigint) SECURITY DEFINER;
ALTER FUNCTION md._api_ready() SECURITY DEFINER;

CREATE FUNCTION md._api_key_role(key_sha256 text) RETURNS text
	LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT k.role FROM md.api_keys k
	WHERE k.key_hash = _api_key_role.key_sha256 AND k.revoked_at IS NULL;
END;
COMMENT ON FUNCTION md._api_key_role(text) IS
	'the API''s key check: role of the active API key with that SHA-256 (hex), NULL when none; the key itself never reaches the database';

REVOKE ALL ON FUNCTION md._api_latest(text, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_history(text, text, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_average(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_poll_create(text[], integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_poll_get(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_poll_delete(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_ready() FROM PUBLIC;
REVOKE ALL ON FUNCTION md._api_key_role(text) FROM PUBLIC;

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

-- OHLCV bars (extension/bars.sql) ---------------------------------------------
-- One creator of monthly partitions for md.prices and md.bars.
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
CREATE OR REPLACE FUNCTION md._ensure_price_partition(ts timestamptz) RETURNS regclass
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

-- Symbols ------------------------------------------------------------------

CREATE TABLE md.symbols (
	symbol		text PRIMARY KEY CHECK (md._symbol_ok(symbol)),
	exchange	text,
	time_zone	text NOT NULL DEFAULT 'UTC',
	currency	text CHECK (currency ~ '^[A-Za-z]{3,5}$'),
	name		text,
	updated_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE md.symbols IS
	'symbol metadata: exchange, market time zone (daily and coarser bars start at its midnight; UTC when unknown), currency, name. UPDATE of time_zone rebuilds the symbol''s daily and coarser bars.';

-- Bars ---------------------------------------------------------------------

CREATE TABLE md.bars (
	symbol		text NOT NULL,
	provider	text NOT NULL,
	"interval"	interval NOT NULL,
	bucket		timestamptz NOT NULL,
	open		numeric NOT NULL,
	high		numeric NOT NULL,
	low			numeric NOT NULL,
	close		numeric NOT NULL,
	volume		numeric,
	prices		integer NOT NULL CHECK (prices > 0),
	first_ts	timestamptz NOT NULL,
	last_ts		timestamptz NOT NULL,
	source		text NOT NULL DEFAULT 'ticks'
) PARTITION BY RANGE (bucket);
-- As for md.prices, the key (symbol, provider, interval, bucket) lives on
-- each monthly partition (md._ensure_bar_partition): pg_dump cannot
-- restore partitions whose indexes hang off an extension-owned parent index.
COMMENT ON TABLE md.bars IS
	'OHLCV bars per (symbol, provider, interval, bucket start); monthly partitions md.bars_YYYYMM (UTC months of bucket) are created as needed';
COMMENT ON COLUMN md.bars.volume IS 'sum of the prices'' volumes; NULL when none had one';
COMMENT ON COLUMN md.bars.prices IS 'number of prices in the bar';
COMMENT ON COLUMN md.bars.source IS
	'ticks: built from md.prices by the sink; a provider''s name: that provider''s official bar';

SELECT pg_catalog.pg_extension_config_dump('md.symbols', '');

-- Levels and buckets ---------------------------------------------------------

CREATE FUNCTION md._bar_kind(level interval) RETURNS integer
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN CASE WHEN extract(year FROM level) <> 0 OR extract(month FROM level) <> 0 THEN 2
				WHEN extract(day FROM level) <> 0 THEN 1
				ELSE 0 END;
COMMENT ON FUNCTION md._bar_kind(interval) IS
	'0: a time-only interval (epoch-aligned in UTC), 1: whole days, 2: whole months (both aligned in the market''s time zone)';

CREATE FUNCTION md._bar_months(level interval) RETURNS integer
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN (extract(year FROM level) * 12 + extract(month FROM level))::integer;
COMMENT ON FUNCTION md._bar_months(interval) IS 'the months of an interval';

-- Inlined into the sink's statement: one expression, no call per price.
-- Days are binned from Monday 1900-01-01, months from January 1900, both
-- in local time: the bucket is the UTC instant of the local start.
CREATE FUNCTION md._bar_bucket(ts timestamptz, level interval, kind integer, tz text)
	RETURNS timestamptz
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE kind
		WHEN 0 THEN date_bin(level, ts, '1970-01-01 00:00:00+00'::timestamptz)
		WHEN 1 THEN date_bin(level, ts AT TIME ZONE tz, '1900-01-01 00:00:00'::timestamp)
					AT TIME ZONE tz
		ELSE ('1900-01-01 00:00:00'::timestamp
			  + ((((extract(year FROM ts AT TIME ZONE tz))::integer - 1900) * 12
				  + (extract(month FROM ts AT TIME ZONE tz))::integer - 1)
				 / md._bar_months(level) * md._bar_months(level)) * interval '1 month')
			 AT TIME ZONE tz
		END;
COMMENT ON FUNCTION md._bar_bucket(timestamptz, interval, integer, text) IS
	'the bucket (start) of the bar of level (of kind md._bar_kind(level)) holding ts, in time zone tz';

CREATE FUNCTION md._bar_end(bucket timestamptz, level interval, tz text)
	RETURNS timestamptz
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN CASE WHEN md._bar_kind(level) = 0 THEN bucket + level
				ELSE (bucket AT TIME ZONE tz + level) AT TIME ZONE tz END;
COMMENT ON FUNCTION md._bar_end(timestamptz, interval, text) IS
	'the end (exclusive) of the bar of level starting at bucket: a local day lasts 23 or 25 hours on a DST change';

CREATE FUNCTION md._bar_time_zone(symbol text) RETURNS text
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	RETURN coalesce((SELECT s.time_zone FROM md.symbols s WHERE s.symbol = _bar_time_zone.symbol), 'UTC');
COMMENT ON FUNCTION md._bar_time_zone(text) IS 'the market time zone of a symbol, UTC when unknown';

-- The stored levels, from marketdata.bar_intervals (checked when set);
-- its default while the library is not loaded yet in this session (an
-- ALTER EXTENSION UPDATE before any call into it).
CREATE FUNCTION md._bar_levels() RETURNS interval[]
	LANGUAGE sql STABLE PARALLEL SAFE
	RETURN coalesce(ARRAY(SELECT trim(l)::interval
						  FROM unnest(string_to_array(coalesce(current_setting('marketdata.bar_intervals', true),
															   '1 minute, 1 hour, 1 day'), ',')) l
						  WHERE trim(l) <> '' ORDER BY 1), '{}');
COMMENT ON FUNCTION md._bar_levels() IS 'the stored bar levels (marketdata.bar_intervals), shortest first';

-- Whether every bar of level lies inside one bar of target. Intraday bars
-- are UTC-aligned, daily ones local: an intraday level nests in days and
-- months only when it divides every UTC offset, which are multiples of
-- 15 minutes. Days nest in months; weeks do not.
CREATE FUNCTION md._bar_divides(level interval, target interval) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN CASE md._bar_kind(target)
		WHEN 0 THEN md._bar_kind(level) = 0
					AND mod(extract(epoch FROM target) * 1000000, extract(epoch FROM level) * 1000000) = 0
		WHEN 1 THEN (md._bar_kind(level) = 0 AND mod(900000000, extract(epoch FROM level) * 1000000) = 0)
					OR (md._bar_kind(level) = 1
						AND mod(extract(day FROM target), extract(day FROM level)) = 0)
		ELSE (md._bar_kind(level) = 0 AND mod(900000000, extract(epoch FROM level) * 1000000) = 0)
			 OR (md._bar_kind(level) = 1 AND extract(day FROM level) = 1)
			 OR (md._bar_kind(level) = 2 AND mod(md._bar_months(target), md._bar_months(level)) = 0)
		END;
COMMENT ON FUNCTION md._bar_divides(interval, interval) IS
	'true when every bar of level lies inside one bar of target, so target can be rolled up from level';

-- An interval a bar can have: positive, and only one of time, days or months.
CREATE FUNCTION md._bar_interval_check(target interval) RETURNS void
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	months numeric := extract(year FROM target) * 12 + extract(month FROM target);
	days numeric := extract(day FROM target);
	secs numeric := extract(epoch FROM target) - extract(epoch FROM make_interval(
		months => months::integer, days => days::integer));
BEGIN
	IF target IS NULL THEN
		RAISE EXCEPTION 'interval must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF months < 0 OR days < 0 OR secs < 0 OR target <= interval '0' THEN
		RAISE EXCEPTION 'bar interval must be positive, not %', target
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (months > 0)::integer + (days > 0)::integer + (secs > 0)::integer > 1 THEN
		RAISE EXCEPTION 'bar interval % mixes months, days and time', target
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use whole months (1 month), whole days (1 day, 1 week) or a time (90 minutes, 26 hours).';
	END IF;
END
$$;
COMMENT ON FUNCTION md._bar_interval_check(interval) IS
	'errors (22023) unless the interval is positive and only time, only days or only months';

-- The level target is rolled up from: the largest that divides it.
CREATE FUNCTION md._bar_source_level(target interval) RETURNS interval
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	levels interval[] := md._bar_levels();
	found interval;
BEGIN
	PERFORM md._bar_interval_check(target);
	SELECT l INTO found FROM unnest(levels) l
		WHERE md._bar_divides(l, target) ORDER BY l DESC LIMIT 1;
	IF found IS NULL THEN
		RAISE EXCEPTION 'interval % is not a whole multiple of a stored bar interval (%)', target,
			coalesce(nullif(coalesce(current_setting('marketdata.bar_intervals', true),
								 array_to_string(levels, ', ')), ''), 'none are stored')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Stored bar intervals are set by marketdata.bar_intervals.';
	END IF;
	RETURN found;
END
$$;
COMMENT ON FUNCTION md._bar_source_level(interval) IS
	'the stored level an interval is rolled up from (the largest that divides it); 22023 naming the stored levels when none does';

-- Partitions ---------------------------------------------------------------

-- Creates the monthly partition of md.bars holding bucket (UTC months).
-- The current bars are updated many times a second: room left on their
-- pages keeps the updates HOT (no new index entry).
CREATE FUNCTION md._ensure_bar_partition(bucket timestamptz) RETURNS regclass
	LANGUAGE sql VOLATILE STRICT SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	RETURN md._ensure_month_partition('bars', bucket, 'fillfactor = 70', ARRAY[
		-- provider last: md_bars reads a range of one symbol's level
		'ALTER TABLE md.%I ADD PRIMARY KEY (symbol, "interval", bucket, provider)']);
COMMENT ON FUNCTION md._ensure_bar_partition(timestamptz) IS
	'creates md.bars_YYYYMM, the partition of md.bars for the UTC month of bucket, when missing';
REVOKE ALL ON FUNCTION md._ensure_bar_partition(timestamptz) FROM PUBLIC;

-- The sink (bars.c) and md_rebuild_bars serialise their work on a symbol's
-- bars by these advisory locks: 64 buckets of symbols, taken in order.
CREATE FUNCTION md._bar_lock_key(symbol text) RETURNS bigint
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN hashtextextended('md.bars', 0) + (hashtext(symbol) & 2147483647) % 64;
COMMENT ON FUNCTION md._bar_lock_key(text) IS
	'the advisory lock that serialises changes to a symbol''s bars (one of 64)';

-- Rebuilding ---------------------------------------------------------------

-- Recomputes from md.prices the bars (source ticks) of the given levels
-- whose buckets hold a time in [from, to] (NULL: unbounded), for one
-- symbol or all. Official bars of providers are left alone.
CREATE FUNCTION md._rebuild_bars(symbol text, "from" timestamptz, "to" timestamptz,
	levels interval[])
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	level interval;
	kind integer;
	-- the widest a bar can be (a month of 31 days, a DST hour) and the
	-- farthest a time zone moves a bucket: bounds for the scans below
	slack interval;
	written bigint := 0;
	n bigint;
	lo timestamptz;
	hi timestamptz;
BEGIN
	IF symbol IS NULL THEN
		PERFORM pg_advisory_xact_lock(k) FROM (
			SELECT hashtextextended('md.bars', 0) + g AS k FROM generate_series(0, 63) g) t ORDER BY k;
	ELSE
		PERFORM pg_advisory_xact_lock(md._bar_lock_key(symbol));
	END IF;
	FOREACH level IN ARRAY levels LOOP
		kind := md._bar_kind(level);
		slack := level + CASE WHEN kind = 2 THEN interval '1 day' * 31 * md._bar_months(level)
							  ELSE interval '0' END + interval '1 day';
		lo := "from" - slack;
		hi := "to" + slack;
		DELETE FROM md.bars b
			WHERE b."interval" = level AND b.source = 'ticks'
			  AND (_rebuild_bars.symbol IS NULL OR b.symbol = _rebuild_bars.symbol)
			  AND ("from" IS NULL OR (b.bucket >= lo
				   AND b.bucket >= md._bar_bucket("from", level, kind, md._bar_time_zone(b.symbol))))
			  AND ("to" IS NULL OR (b.bucket <= hi
				   AND b.bucket <= md._bar_bucket("to", level, kind, md._bar_time_zone(b.symbol))));
		PERFORM md._ensure_bar_partition(m)
			FROM (SELECT DISTINCT date_trunc('month', md._bar_bucket(p.ts, level, kind,
						coalesce(s.time_zone, 'UTC')), 'UTC') AS m
				  FROM md.prices p LEFT JOIN md.symbols s ON s.symbol = p.symbol
				  WHERE (_rebuild_bars.symbol IS NULL OR p.symbol = _rebuild_bars.symbol)
					AND ("from" IS NULL OR p.ts >= lo) AND ("to" IS NULL OR p.ts <= hi)) t;
		INSERT INTO md.bars (symbol, provider, "interval", bucket, open, high, low, close,
							 volume, prices, first_ts, last_ts)
			SELECT t.symbol, t.provider, level, t.bucket,
				   (array_agg(t.price ORDER BY t.ts))[1], max(t.price), min(t.price),
				   (array_agg(t.price ORDER BY t.ts DESC))[1], sum(t.volume),
				   count(*), min(t.ts), max(t.ts)
			FROM (SELECT p.symbol, p.provider, p.price, p.ts, p.volume,
						 md._bar_bucket(p.ts, level, kind, coalesce(s.time_zone, 'UTC')) AS bucket,
						 coalesce(s.time_zone, 'UTC') AS tz
				  FROM md.prices p LEFT JOIN md.symbols s ON s.symbol = p.symbol
				  WHERE (_rebuild_bars.symbol IS NULL OR p.symbol = _rebuild_bars.symbol)
					AND ("from" IS NULL OR p.ts >= lo) AND ("to" IS NULL OR p.ts <= hi)) t
			WHERE ("from" IS NULL OR t.bucket >= md._bar_bucket("from", level, kind, t.tz))
			  AND ("to" IS NULL OR t.bucket <= md._bar_bucket("to", level, kind, t.tz))
			  AND NOT EXISTS (SELECT 1 FROM md.bars o
							  WHERE o.symbol = t.symbol AND o.provider = t.provider
								AND o."interval" = level AND o.bucket = t.bucket)
			GROUP BY t.symbol, t.provider, t.bucket;
		GET DIAGNOSTICS n = ROW_COUNT;
		written := written + n;
	END LOOP;
	RETURN written;
END
$$;
COMMENT ON FUNCTION md._rebuild_bars(text, timestamptz, timestamptz, interval[]) IS
	'recomputes the tick bars of levels whose buckets hold a time in [from, to] from md.prices; returns the bars written';
REVOKE ALL ON FUNCTION md._rebuild_bars(text, timestamptz, timestamptz, interval[]) FROM PUBLIC;

CREATE FUNCTION @extschema@.md_rebuild_bars(symbol text DEFAULT NULL,
	"from" timestamptz DEFAULT NULL, "to" timestamptz DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF "from" > "to" THEN
		RAISE EXCEPTION 'from (%) is after to (%)', "from", "to"
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN md._rebuild_bars(CASE WHEN symbol IS NOT NULL
								 THEN @extschema@._md_normalize_symbol(symbol) END,
							"from", "to", md._bar_levels());
END
$$;
COMMENT ON FUNCTION @extschema@.md_rebuild_bars(text, timestamptz, timestamptz) IS
	'recomputes from md.prices the bars of every stored level (marketdata.bar_intervals) of a symbol (NULL: all) whose buckets hold a time in [from, to] (NULL: unbounded); returns the bars written';
REVOKE ALL ON FUNCTION @extschema@.md_rebuild_bars(text, timestamptz, timestamptz) FROM PUBLIC;

-- whether PostgreSQL knows the time zone (pg_timezone_names would read the
-- whole zone database for each row)
CREATE FUNCTION md._time_zone_ok(name text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'md_time_zone_ok'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION md._time_zone_ok(text) IS 'true when PostgreSQL knows the time zone (AT TIME ZONE accepts it)';

-- A symbol's time zone is checked on the way in; a change rebuilds the
-- symbol's bars of day and month levels, whose buckets move with it.
CREATE FUNCTION md._symbols_check() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.symbol := @extschema@._md_normalize_symbol(NEW.symbol);
	IF NOT md._time_zone_ok(NEW.time_zone) THEN
		RAISE EXCEPTION 'unknown time zone "%"', NEW.time_zone
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Time zones are listed in pg_timezone_names (Europe/Berlin, America/New_York).';
	END IF;
	NEW.updated_at := now();
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION md._symbols_check() IS
	'normalises the symbol and checks the time zone of md.symbols rows';

CREATE TRIGGER symbols_check
	BEFORE INSERT OR UPDATE ON md.symbols
	FOR EACH ROW EXECUTE FUNCTION md._symbols_check();

CREATE FUNCTION md._symbols_rebuild() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	coarse interval[] := ARRAY(SELECT l FROM unnest(md._bar_levels()) l WHERE md._bar_kind(l) > 0);
BEGIN
	IF TG_OP = 'INSERT' OR TG_OP = 'DELETE' OR OLD.time_zone IS DISTINCT FROM NEW.time_zone
		OR OLD.symbol IS DISTINCT FROM NEW.symbol THEN
		IF TG_OP <> 'INSERT' THEN
			PERFORM md._rebuild_bars(OLD.symbol, NULL, NULL, coarse);
		END IF;
		IF TG_OP <> 'DELETE' THEN
			PERFORM md._rebuild_bars(NEW.symbol, NULL, NULL, coarse);
		END IF;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION md._symbols_rebuild() IS
	'rebuilds the day and month bars of a symbol whose time zone changed';

CREATE TRIGGER symbols_rebuild
	AFTER INSERT OR UPDATE OR DELETE ON md.symbols
	FOR EACH ROW EXECUTE FUNCTION md._symbols_rebuild();

-- Reading ------------------------------------------------------------------

-- A bar of target is rolled up from the bars of one stored level (the
-- largest that divides it) and of one provider: with provider NULL, the
-- provider of best priority that has data in that bucket.
CREATE FUNCTION @extschema@.md_bars(symbol text, "interval" interval,
	"from" timestamptz, "to" timestamptz, provider text DEFAULT NULL,
	fill text DEFAULT 'none')
	RETURNS TABLE (bucket timestamptz, open numeric, high numeric, low numeric,
				   close numeric, volume numeric, prices bigint, source text)
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sym text := @extschema@._md_normalize_symbol(symbol);
	target interval := md_bars."interval";
	level interval;
	kind integer;
	tz text;
	lo timestamptz;			-- the first target bucket
	stored_hi timestamptz;	-- stored bars start before this
	seed_close numeric;
	seed_source text;
BEGIN
	IF fill IS NULL OR fill NOT IN ('none', 'null', 'previous') THEN
		RAISE EXCEPTION 'unknown fill "%"', fill
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Fills are none, null and previous.';
	END IF;
	IF fill <> 'none' AND ("from" IS NULL OR "to" IS NULL) THEN
		RAISE EXCEPTION 'fill % needs both from and to', fill USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF "from" > "to" THEN
		RAISE EXCEPTION 'from (%) is after to (%)', "from", "to"
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF md_bars.provider IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM md.providers p WHERE p.name = md_bars.provider) THEN
		RAISE EXCEPTION 'unknown provider "%"', md_bars.provider
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Providers are listed in md.providers.';
	END IF;
	level := md._bar_source_level(target);
	kind := md._bar_kind(target);
	tz := md._bar_time_zone(sym);
	lo := md._bar_bucket("from", target, kind, tz);
	stored_hi := md._bar_end(md._bar_bucket("to", target, kind, tz), target, tz);
	IF fill <> 'none' AND extract(epoch FROM "to" - lo) / extract(epoch FROM target) > 1000000 THEN
		RAISE EXCEPTION 'from % to % holds more than 1000000 bars of %', "from", "to", target
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Ask for a shorter range or a longer interval.';
	END IF;

	IF fill = 'none' THEN
		RETURN QUERY SELECT * FROM md._bars_of(sym, target, kind, tz, level, lo, stored_hi,
											   "to", md_bars.provider) d;
		RETURN;
	END IF;

	SELECT b.close, b.provider INTO seed_close, seed_source
		FROM md.bars b JOIN md.providers pr ON pr.name = b.provider
		WHERE b.symbol = sym AND b."interval" = level AND b.bucket < lo
		  AND (md_bars.provider IS NULL OR b.provider = md_bars.provider)
		ORDER BY b.bucket DESC, pr.priority, b.provider LIMIT 1;
	RETURN QUERY
		WITH g AS (
			SELECT t AS tb FROM generate_series(lo, "to" - interval '1 microsecond', target) t
				WHERE kind = 0
			UNION ALL
			SELECT t AT TIME ZONE tz FROM generate_series(lo AT TIME ZONE tz, "to" AT TIME ZONE tz, target) t
				WHERE kind > 0 AND t AT TIME ZONE tz < "to"),
		d AS (SELECT * FROM md._bars_of(sym, target, kind, tz, level, lo, stored_hi,
										"to", md_bars.provider)),
		j AS (SELECT g.tb, d.open, d.high, d.low, d.close, d.volume, d.prices, d.source,
					 count(d.close) OVER (ORDER BY g.tb) AS grp
			  FROM g LEFT JOIN d ON d.bucket = g.tb),
		c AS (SELECT j.*, first_value(j.close) OVER w AS carry,
					 first_value(j.source) OVER w AS carry_source
			  FROM j WINDOW w AS (PARTITION BY j.grp ORDER BY j.tb))
		SELECT c.tb,
			   CASE WHEN fill = 'previous' THEN coalesce(c.open, c.carry, seed_close) ELSE c.open END,
			   CASE WHEN fill = 'previous' THEN coalesce(c.high, c.carry, seed_close) ELSE c.high END,
			   CASE WHEN fill = 'previous' THEN coalesce(c.low, c.carry, seed_close) ELSE c.low END,
			   CASE WHEN fill = 'previous' THEN coalesce(c.close, c.carry, seed_close) ELSE c.close END,
			   CASE WHEN fill = 'previous' AND c.prices IS NULL
						 AND coalesce(c.carry, seed_close) IS NOT NULL THEN 0 ELSE c.volume END,
			   coalesce(c.prices, 0),
			   CASE WHEN fill = 'previous'
					THEN coalesce(c.source, c.carry_source, seed_source) ELSE c.source END
		FROM c ORDER BY c.tb;
END
$$;
COMMENT ON FUNCTION @extschema@.md_bars(text, interval, timestamptz, timestamptz, text, text) IS
	'OHLCV bars of a symbol for any whole multiple of a stored interval, buckets starting from the one holding from to before to; provider NULL picks, per bar, the provider of best priority (named in source); fill none, null (empty buckets with NULL prices) or previous (the last close carried, volume 0)';

-- The bars with data of md_bars(): a stored level read as it is, or
-- rolled up (open of the first, close of the last bar by time).
CREATE FUNCTION md._bars_of(sym text, target interval, kind integer, tz text,
	level interval, lo timestamptz, stored_hi timestamptz, "to" timestamptz,
	provider text)
	RETURNS TABLE (bucket timestamptz, open numeric, high numeric, low numeric,
				   close numeric, volume numeric, prices bigint, source text)
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	-- unbounded as infinities, so that the scans below are index ranges
	-- in the kept (generic) plans
	b_lo timestamptz := coalesce(lo, '-infinity');
	b_hi timestamptz := coalesce(stored_hi, 'infinity');
	b_to timestamptz := coalesce("to", 'infinity');
BEGIN
	IF md._bar_kind(level) = kind AND level = target THEN
		RETURN QUERY
			SELECT DISTINCT ON (b.bucket) b.bucket, b.open, b.high, b.low, b.close,
				   b.volume, b.prices::bigint, b.provider
			FROM md.bars b JOIN md.providers pr ON pr.name = b.provider
			WHERE b.symbol = sym AND b."interval" = level
			  AND b.bucket >= b_lo AND b.bucket < b_to
			  AND (_bars_of.provider IS NULL OR b.provider = _bars_of.provider)
			ORDER BY b.bucket, pr.priority, b.provider;
		RETURN;
	END IF;
	RETURN QUERY
		-- each provider's roll-up per bucket (open and close as the price
		-- of the least and greatest [time, price], which hashes where
		-- ORDER BY aggregates sort), then the provider of best priority
		WITH g AS (
			SELECT md._bar_bucket(b.bucket, target, kind, tz) AS tb, b.provider,
				   min(pr.priority) AS priority,
				   (min(ARRAY[extract(epoch FROM b.first_ts), b.open]))[2] AS open,
				   max(b.high) AS high, min(b.low) AS low,
				   (max(ARRAY[extract(epoch FROM b.last_ts), b.close]))[2] AS close,
				   sum(b.volume) AS volume, sum(b.prices)::bigint AS prices
			FROM md.bars b JOIN md.providers pr ON pr.name = b.provider
			WHERE b.symbol = sym AND b."interval" = level
			  AND b.bucket >= b_lo AND b.bucket < b_hi
			  AND (_bars_of.provider IS NULL OR b.provider = _bars_of.provider)
			GROUP BY 1, 2)
		SELECT DISTINCT ON (g.tb) g.tb, g.open, g.high, g.low, g.close, g.volume, g.prices,
			   g.provider
		FROM g WHERE g.tb < b_to
		ORDER BY g.tb, g.priority, g.provider;
END
$$;
COMMENT ON FUNCTION md._bars_of(text, interval, integer, text, interval, timestamptz, timestamptz, timestamptz, text) IS
	'the bars with data of md_bars(): level read as it is when it is the target, else rolled up';

-- REST API -----------------------------------------------------------------

-- A symbol or interval as a query string value: the characters they may
-- hold that a URL reserves, percent-encoded.
CREATE FUNCTION md._url_word(word text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN replace(replace(replace(replace(replace(replace(word, '%', '%25'),
		' ', '%20'), '^', '%5E'), '=', '%3D'), '/', '%2F'), '+', '%2B');
COMMENT ON FUNCTION md._url_word(text) IS
	'percent-encodes the characters of a symbol or interval that a query string reserves';

-- The REST interval words: 1m, 5m, 1h, 4h, 1d, 1w, 1mo; else interval text.
CREATE FUNCTION md._bar_interval_word(word text) RETURNS interval
	LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m text[] := regexp_match(word, '^([1-9][0-9]{0,5})(m|h|d|w|mo)$');
BEGIN
	IF m IS NOT NULL THEN
		RETURN m[1]::integer * CASE m[2] WHEN 'm' THEN interval '1 minute'
			WHEN 'h' THEN interval '1 hour' WHEN 'd' THEN interval '1 day'
			WHEN 'w' THEN interval '7 days' ELSE interval '1 month' END;
	END IF;
	RETURN word::interval;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
	RAISE EXCEPTION 'invalid interval "%"', left(word, 40)
		USING ERRCODE = 'invalid_parameter_value',
			  HINT = 'An interval is 1m, 5m, 1h, 4h, 1d, 1w, 1mo or PostgreSQL interval text (15 minutes).';
END
$$;
COMMENT ON FUNCTION md._bar_interval_word(text) IS
	'a REST interval (1m, 5m, 1h, 4h, 1d, 1w, 1mo, or interval text) as an interval';

-- A page covers limit buckets from the one holding from (to defaults to
-- now, from to the newest page's): with fill none it holds those of
-- them that have data. closed: to was given and every bucket of the page
-- has ended, so the answer can be cached.
CREATE FUNCTION md._api_bars(symbol text, "interval" text, "from" text, "to" text,
	fill text, provider text, "limit" integer,
	OUT body text, OUT closed boolean)
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sym text := @extschema@._md_normalize_symbol(symbol);
	iv interval := md._bar_interval_word("interval");
	n integer := coalesce("limit", 100);
	f text := coalesce(fill, 'none');
	kind integer := md._bar_kind(iv);
	tz text := md._bar_time_zone(sym);
	t_to timestamptz := coalesce("to"::timestamptz, now());
	t_from timestamptz;
	page_lo timestamptz;
	page_hi timestamptz;
	next_from timestamptz;
	bars json;
BEGIN
	IF n NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'limit must be between 1 and 1000, not %', n
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM md._bar_source_level(iv);
	-- by default the newest page: limit buckets up to the one holding to
	page_lo := md._bar_bucket(t_to - interval '1 microsecond', iv, kind, tz);
	t_from := coalesce("from"::timestamptz,
		CASE WHEN kind = 0 THEN page_lo - (n - 1) * iv
			 ELSE (page_lo AT TIME ZONE tz - (n - 1) * iv) AT TIME ZONE tz END);
	IF t_from > t_to THEN
		RAISE EXCEPTION 'from (%) is after to (%)', md._iso_utc(t_from), md._iso_utc(t_to)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	page_lo := md._bar_bucket(t_from, iv, kind, tz);
	page_hi := CASE WHEN kind = 0 THEN page_lo + n * iv
					ELSE (page_lo AT TIME ZONE tz + n * iv) AT TIME ZONE tz END;
	IF page_hi < t_to THEN
		next_from := page_hi;
	ELSE
		page_hi := t_to;
	END IF;
	SELECT coalesce(json_agg(json_build_object('bucket', md._iso_utc(b.bucket),
			'open', b.open, 'high', b.high, 'low', b.low, 'close', b.close,
			'volume', b.volume, 'prices', b.prices, 'source', b.source) ORDER BY b.bucket),
			'[]'::json)
		INTO bars
		FROM @extschema@.md_bars(sym, iv, t_from, page_hi, provider, f) b;
	body := json_build_object('symbol', sym, 'interval', "interval",
		'from', md._iso_utc(t_from), 'to', md._iso_utc(t_to), 'fill', f,
		'provider', provider, 'limit', n, 'bars', bars,
		'next_from', md._iso_utc(next_from),
		'next', CASE WHEN next_from IS NOT NULL THEN
			'/prices/bars?symbol=' || md._url_word(sym) || '&interval=' || md._url_word("interval")
			|| '&from=' || md._iso_utc(next_from) || '&to=' || md._iso_utc(t_to)
			|| '&fill=' || f || coalesce('&provider=' || provider, '') || '&limit=' || n END)::text;
	closed := "to" IS NOT NULL
		AND md._bar_end(md._bar_bucket(page_hi - interval '1 microsecond', iv, kind, tz), iv, tz) <= now();
END
$$;
COMMENT ON FUNCTION md._api_bars(text, text, text, text, text, text, integer) IS
	'GET /prices/bars: a page of md_bars() as JSON (next_from and next link start the next page) and whether every bucket of it has ended';
-- the API's role gets it through md_api_grant(), like every md._api_*
REVOKE ALL ON FUNCTION md._api_bars(text, text, text, text, text, text, integer) FROM PUBLIC;

-- The bars of the prices stored before the upgrade. The partitions this
-- creates belong to the database, not to the extension, as those the sink
-- creates (pg_dump keeps their rows).
SELECT md._rebuild_bars(NULL, NULL, NULL, md._bar_levels());
DO $$
DECLARE
	part regclass;
BEGIN
	FOR part IN SELECT i.inhrelid::regclass FROM pg_catalog.pg_inherits i
				WHERE i.inhparent = 'md.bars'::regclass LOOP
		EXECUTE format('ALTER EXTENSION marketdata DROP TABLE %s', part);
	END LOOP;
END
$$;

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
REVOKE ALL ON FUNCTION md._api_stream_replay(text[], text, integer, integer) FROM PUBLIC;

-- Retention of every growing table (md.retention_status, md_retention_run),
-- operator controls, alerts.
-- retention deletes the oldest first
CREATE INDEX raw_responses_received_idx ON md.raw_responses (received_at);

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
	IF kind NOT IN ('scheduler', 'relay', 'consumer', 'retention') THEN
		RAISE EXCEPTION 'unknown worker kind "%"', kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The kinds are scheduler, relay, consumer and retention.';
	END IF;
	-- the launcher starts them again within a second or two
	SELECT count(*) INTO n FROM md.worker_status w
	WHERE w.worker = kind AND w.database = current_database() AND pg_terminate_backend(w.pid);
	RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.md_worker_restart(text) IS
	'stops this database''s workers of a kind (scheduler, relay, consumer, retention) for the launcher to start again; returns how many (admin only)';
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

-- A Kafka subscription librdkafka cannot use (an empty group.id crashed the
-- consumer) is refused; the consumer says why it skips one in "error".
DO $$
DECLARE
	bad record;
BEGIN
	SELECT id, group_id INTO bad FROM md.kafka_subscriptions
	WHERE group_id !~ '^[A-Za-z0-9._-]{1,249}$' LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'md.kafka_subscriptions row % has group_id "%", which Kafka cannot use', bad.id, bad.group_id
			USING ERRCODE = 'check_violation',
				  HINT = 'Give it a group_id of 1 to 249 letters, digits, ".", "_" or "-", or delete it, then update again.';
	END IF;
END
$$;
ALTER TABLE md.kafka_subscriptions ADD CONSTRAINT kafka_subscriptions_group_id_check
	CHECK (group_id ~ '^[A-Za-z0-9._-]{1,249}$');
ALTER TABLE md.kafka_subscriptions ADD COLUMN error text;
COMMENT ON COLUMN md.kafka_subscriptions.error IS
	'why the consumer cannot use the row (set by the consumer); NULL when it can';
CREATE OR REPLACE VIEW md.kafka_status AS
	SELECT s.id AS subscription_id, coalesce(o.topic, s.topic) AS topic,
		   coalesce(o.group_id, s.group_id) AS group_id, o.partition,
		   o.next_offset AS stored_offset, o.high_watermark,
		   GREATEST(o.high_watermark - o.next_offset, 0) AS lag,
		   o.last_message_at, o.updated_at, s.enabled, s.error
	FROM md.kafka_offsets o
	FULL JOIN md.kafka_subscriptions s ON s.topic = o.topic AND s.group_id = o.group_id;
COMMENT ON VIEW md.kafka_status IS
	'Kafka consumption per topic and partition: stored offset, high watermark, lag, last message time, and why a subscription cannot be consumed (one row with no partition until it is assigned)';

-- A polling job's next_run_at must be finite: -infinity stopped every claim
-- of the scheduler, infinity never ran. Such a job is due now.
UPDATE md.polling_jobs SET next_run_at = now() WHERE NOT isfinite(next_run_at);
ALTER TABLE md.polling_jobs ADD CONSTRAINT polling_jobs_next_run_at_check
	CHECK (isfinite(next_run_at));

-- Offsets the broker deleted before the consumer read them: lost messages.
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
SELECT pg_catalog.pg_extension_config_dump('md.kafka_gaps', '');
SELECT pg_catalog.pg_extension_config_dump('md.kafka_gaps_id_seq', '');
CREATE OR REPLACE VIEW md.kafka_status AS
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

-- The jobs' trigger refuses such a time first, as it does the other fields.
CREATE OR REPLACE FUNCTION md._polling_jobs_check() RETURNS trigger
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

-- History from the providers' history endpoints (issue 18).
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

-- issue 14: the alerts in the API's /metrics
-- /metrics: md.alerts for the API's role, which reads no table
CREATE FUNCTION md._api_alerts() RETURNS text
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	RETURN (SELECT coalesce(json_agg(json_build_array(a.measure, a.subject, a.value))::text, '[]')
			FROM md.alerts a);
COMMENT ON FUNCTION md._api_alerts() IS
	'md.alerts as a JSON array of [measure, subject, value], for the API''s /metrics';
REVOKE ALL ON FUNCTION md._api_alerts() FROM PUBLIC;

-- issue 18: backfill jobs (md.backfill_jobs, md_backfill, md.backfill_status)
-- A *job* asks for the history of its symbols at one stored bar level over
-- [from, to); a *request* is one history call for one symbol and one slice
-- of that range. The cursor (cursor_symbol, cursor_from) names the next
-- request not yet done, so a restart resumes there and never repeats one.

CREATE TABLE md.backfill_jobs (
	id			bigserial PRIMARY KEY,
	symbols		text[] NOT NULL
				CHECK (cardinality(symbols) BETWEEN 1 AND 500),
	provider	text NOT NULL REFERENCES md.providers (name) ON UPDATE CASCADE,
	"interval"	interval NOT NULL,
	"from"		timestamptz NOT NULL CHECK (isfinite("from")),
	"to"		timestamptz NOT NULL CHECK (isfinite("to")),
	state		text NOT NULL DEFAULT 'queued'
				CHECK (state IN ('queued', 'running', 'paused', 'succeeded', 'partial', 'failed')),
	requests_total integer NOT NULL DEFAULT 0 CHECK (requests_total >= 0),
	requests_done integer NOT NULL DEFAULT 0 CHECK (requests_done >= 0),
	bars_stored bigint NOT NULL DEFAULT 0 CHECK (bars_stored >= 0),
	cursor_symbol integer NOT NULL DEFAULT 1 CHECK (cursor_symbol >= 1),
	cursor_from timestamptz,
	last_error	text,
	created_by	text NOT NULL DEFAULT current_user,
	created_at	timestamptz NOT NULL DEFAULT now(),
	started_at	timestamptz,
	finished_at timestamptz,
	gaps		integer NOT NULL DEFAULT 0 CHECK (gaps >= 0),
	retries		integer NOT NULL DEFAULT 0 CHECK (retries >= 0),
	CHECK ("from" < "to")
);
COMMENT ON TABLE md.backfill_jobs IS
	'history requests: INSERT (or md_backfill) queues one, UPDATE SET state = ''paused'' pauses, DELETE cancels; bars land in md.bars';
COMMENT ON COLUMN md.backfill_jobs.cursor_symbol IS
	'1-based index in symbols of the next request not yet done';
COMMENT ON COLUMN md.backfill_jobs.cursor_from IS
	'start of the next request''s slice for that symbol (NULL: from)';
COMMENT ON COLUMN md.backfill_jobs.gaps IS
	'requests whose pages were malformed and skipped (last_error names the last): the job ends partial';
COMMENT ON COLUMN md.backfill_jobs.retries IS
	'rate-limited or unavailable answers in a row for the current request: it is sent again after 5 s, doubling to 5 min; at marketdata.backfill_max_retries the job fails';

SELECT pg_catalog.pg_extension_config_dump('md.backfill_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('md.backfill_jobs_id_seq', '');

-- Jobs are checked on the way in, with messages a user can act on; what a
-- job asks for is fixed once a request of it was done (the cursor means it).
CREATE FUNCTION md._backfill_jobs_check() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND OLD.requests_done > 0
	   AND (NEW.symbols, NEW.provider, NEW."interval", NEW."from", NEW."to")
		   IS DISTINCT FROM (OLD.symbols, OLD.provider, OLD."interval", OLD."from", OLD."to") THEN
		RAISE EXCEPTION 'backfill job % has started: its symbols, provider, interval and range cannot change', OLD.id
			USING ERRCODE = 'object_in_use',
				  HINT = 'Delete the job and insert a new one.';
	END IF;
	NEW.symbols := @extschema@._md_normalize_symbols(NEW.symbols);
	IF NOT EXISTS (SELECT 1 FROM md.providers p WHERE p.name = NEW.provider) THEN
		RAISE EXCEPTION 'unknown provider "%"', NEW.provider
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Providers are listed in md.providers.';
	END IF;
	PERFORM md._bar_interval_check(NEW."interval");
	IF NOT NEW."interval" = ANY (md._bar_levels()) THEN
		RAISE EXCEPTION 'backfill interval % is not a stored bar level', NEW."interval"
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = format('The stored levels (marketdata.bar_intervals) are %s.', md._bar_levels());
	END IF;
	IF NEW."from" IS NULL OR NEW."to" IS NULL
	   OR NOT isfinite(NEW."from") OR NOT isfinite(NEW."to") THEN
		RAISE EXCEPTION 'backfill range must be two finite times, not [%, %)', NEW."from", NEW."to"
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NEW."from" >= NEW."to" THEN
		RAISE EXCEPTION 'backfill range is empty: from % is not before to %', NEW."from", NEW."to"
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- no provider serves more; a longer range is a typing error
	IF NEW."to" - NEW."from" > interval '50 years' THEN
		RAISE EXCEPTION 'backfill range of % is longer than 50 years', NEW."to" - NEW."from"
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NEW.cursor_symbol > cardinality(NEW.symbols) + 1 THEN
		RAISE EXCEPTION 'backfill cursor % is past the job''s % symbols', NEW.cursor_symbol, cardinality(NEW.symbols)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF TG_OP = 'INSERT' OR (NEW.symbols, NEW."interval", NEW."from", NEW."to")
		IS DISTINCT FROM (OLD.symbols, OLD."interval", OLD."from", OLD."to") THEN
		NEW.requests_total := md._backfill_requests(cardinality(NEW.symbols), NEW."interval",
													NEW."from", NEW."to");
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION md._backfill_jobs_check() IS
	'normalises symbols and checks provider, interval (a stored bar level) and range of md.backfill_jobs rows; a started job''s request is fixed';

CREATE TRIGGER backfill_jobs_check
	BEFORE INSERT OR UPDATE ON md.backfill_jobs
	FOR EACH ROW EXECUTE FUNCTION md._backfill_jobs_check();

CREATE FUNCTION @extschema@.md_backfill(symbols text[], "interval" interval,
	"from" timestamptz, "to" timestamptz, provider text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	chosen text := provider;
	job bigint;
BEGIN
	IF chosen IS NULL THEN
		SELECT p.name INTO chosen FROM md.providers p
		WHERE p.enabled AND p.failover ORDER BY p.priority, p.name LIMIT 1;
		IF chosen IS NULL THEN
			RAISE EXCEPTION 'no enabled failover provider to backfill from'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Name a provider, or enable one in md.providers.';
		END IF;
	END IF;
	INSERT INTO md.backfill_jobs (symbols, provider, "interval", "from", "to")
	VALUES (md_backfill.symbols, chosen, md_backfill."interval", md_backfill."from", md_backfill."to")
	RETURNING id INTO job;
	RETURN job;
END
$$;
COMMENT ON FUNCTION @extschema@.md_backfill(text[], interval, timestamptz, timestamptz, text) IS
	'queues a backfill of symbols'' bars at interval over [from, to) from provider (the first enabled failover provider by priority when NULL); returns the job id';

-- Progress people can watch: rate in requests per second since the start.
CREATE VIEW md.backfill_status AS
	SELECT j.id, j.provider, j.symbols, j."interval", j."from", j."to", j.state,
		   j.requests_done, j.requests_total, j.bars_stored,
		   CASE WHEN j.requests_total > 0
				THEN round(100.0 * least(j.requests_done, j.requests_total) / j.requests_total, 1) END AS percent,
		   r.rate AS requests_per_second,
		   CASE WHEN r.rate > 0 AND j.state IN ('queued', 'running', 'paused')
				THEN make_interval(secs => greatest(j.requests_total - j.requests_done, 0) / r.rate) END AS time_left,
		   j.last_error, j.created_by, j.created_at, j.started_at, j.finished_at
	FROM md.backfill_jobs j
	CROSS JOIN LATERAL (
		SELECT CASE WHEN j.started_at IS NOT NULL AND j.requests_done > 0
					 AND coalesce(j.finished_at, now()) > j.started_at
				THEN j.requests_done / extract(epoch FROM coalesce(j.finished_at, now()) - j.started_at)::float8
				END AS rate) r;
COMMENT ON VIEW md.backfill_status IS
	'progress of each backfill job: requests done/total, bars stored, percent, requests per second, estimated time left, last error';

-- Backfill steps -------------------------------------------------------------

-- The slice of a job's range that one request asks for, by level: a page
-- or a few of every provider's history endpoint.
CREATE FUNCTION md._backfill_slice(level interval) RETURNS interval
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN CASE WHEN level >= interval '1 day' THEN interval '1 year'
				WHEN level >= interval '1 hour' THEN interval '30 days'
				ELSE interval '1 day' END;
COMMENT ON FUNCTION md._backfill_slice(interval) IS
	'the part of a backfill job''s range one request asks for, at bar level';

CREATE FUNCTION md._backfill_requests(symbols integer, level interval,
	"from" timestamptz, "to" timestamptz) RETURNS integer
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	RETURN symbols * (SELECT count(*) FROM generate_series("from", "to" - interval '1 microsecond',
														   md._backfill_slice(level)));
COMMENT ON FUNCTION md._backfill_requests(integer, interval, timestamptz, timestamptz) IS
	'how many requests a backfill of that many symbols at level over [from, to) makes';

-- One request of the oldest job that runs: its slice fetched through
-- md_fetch_history, its bars merged into md.bars as the provider's
-- official bars (they win over bars built from ticks), and the cursor
-- moved on, all in this one transaction: a crash before the commit loses
-- the request whole (it is sent again), after it the request is never
-- sent again and no bar is doubled. Returns the milliseconds to wait
-- before the next step: the job's share of its provider's budget
-- (marketdata.backfill_share), a pause after a rate limit or an outage,
-- or -1 when no job runs.
CREATE FUNCTION md._backfill_step() RETURNS integer
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	j			md.backfill_jobs;
	sym			text;
	s_from		timestamptz;
	s_to		timestamptz;
	kind		integer;
	tz			text;
	r			record;
	b_ts		timestamptz[] := '{}';
	b_open		numeric[] := '{}';
	b_high		numeric[] := '{}';
	b_low		numeric[] := '{}';
	b_close		numeric[] := '{}';
	b_volume	numeric[] := '{}';
	transient	text;
	fatal		text;
	gap_note		text;
	stored		bigint := 0;
	share		integer := coalesce(nullif(current_setting('marketdata.backfill_share', true), '')::integer, 50);
	max_retries	integer := coalesce(nullif(current_setting('marketdata.backfill_max_retries', true), '')::integer, 10);
	per_minute	integer;
BEGIN
	SELECT * INTO j FROM md.backfill_jobs
	WHERE state IN ('queued', 'running')
	ORDER BY created_at, id LIMIT 1
	FOR UPDATE SKIP LOCKED;
	IF NOT FOUND THEN
		RETURN -1;
	END IF;
	SELECT p.rate_limit_per_minute INTO per_minute FROM md.providers p WHERE p.name = j.provider;
	sym := j.symbols[j.cursor_symbol];
	s_from := coalesce(j.cursor_from, j."from");
	s_to := least(s_from + md._backfill_slice(j."interval"), j."to");
	kind := md._bar_kind(j."interval");
	tz := md._bar_time_zone(sym);

	BEGIN
		FOR r IN SELECT * FROM @extschema@.md_fetch_history(sym, j."interval", s_from, s_to, j.provider) LOOP
			IF r.kind = 'page' AND r.error_class IS NOT NULL THEN
				IF r.error_class IN ('rate_limited', 'unavailable') THEN
					transient := format('%s: %s', r.error_class, r.message);
				ELSIF r.error_class = 'malformed' THEN
					gap_note := concat_ws('; ', gap_note, format('%s [%s, %s): %s', sym, s_from, s_to, r.message));
				ELSIF r.error_class <> 'no_data' THEN
					fatal := format('%s: %s', r.error_class, r.message);
				END IF;
			ELSIF r.kind = 'bar' AND r.ts >= s_from AND r.ts < s_to THEN
				b_ts := b_ts || md._bar_bucket(r.ts, j."interval", kind, tz);
				b_open := b_open || r.open;
				b_high := b_high || r.high;
				b_low := b_low || r.low;
				b_close := b_close || r.close;
				b_volume := b_volume || r.volume;
			END IF;
		END LOOP;
	EXCEPTION WHEN OTHERS THEN
		fatal := SQLERRM;
	END;

	IF transient IS NOT NULL AND fatal IS NULL THEN
		IF max_retries > 0 AND j.retries + 1 >= max_retries THEN
			UPDATE md.backfill_jobs SET state = 'failed', finished_at = now(), retries = j.retries + 1,
				last_error = format('%s [%s, %s): gave up after %s answers in a row without data: %s',
									sym, s_from, s_to, j.retries + 1, transient)
			WHERE id = j.id;
			RETURN 0;
		END IF;
		-- nothing of this request is kept: it is sent again after a pause
		-- that doubles, 5 s to 5 min, so a provider that keeps refusing is
		-- not asked every few seconds for hours
		UPDATE md.backfill_jobs SET state = 'running', last_error = transient,
			retries = j.retries + 1, started_at = coalesce(started_at, now())
		WHERE id = j.id;
		RETURN least(5000 * 2 ^ j.retries, 300000)::integer;
	END IF;
	IF fatal IS NOT NULL THEN
		UPDATE md.backfill_jobs SET state = 'failed', finished_at = now(),
			last_error = format('%s [%s, %s): %s', sym, s_from, s_to, fatal)
		WHERE id = j.id;
		RETURN 0;
	END IF;

	IF cardinality(b_ts) > 0 THEN
		PERFORM md._ensure_bar_partition(t) FROM (SELECT DISTINCT date_trunc('month', t, 'UTC') AS t
												 FROM unnest(b_ts) t) m;
		PERFORM pg_advisory_xact_lock(md._bar_lock_key(sym));
		-- one bar per bucket: the last the provider sent of it
		MERGE INTO md.bars b
		USING (SELECT DISTINCT ON (u.bucket) u.*
			   FROM unnest(b_ts, b_open, b_high, b_low, b_close, b_volume)
					WITH ORDINALITY u(bucket, open, high, low, close, volume, n)
			   ORDER BY u.bucket, u.n DESC) s
		ON b.symbol = sym AND b.provider = j.provider AND b."interval" = j."interval"
		   AND b.bucket = s.bucket
		WHEN MATCHED AND (b.source <> j.provider OR (b.open, b.high, b.low, b.close, b.volume)
						  IS DISTINCT FROM (s.open, s.high, s.low, s.close, s.volume)) THEN
			UPDATE SET open = s.open, high = s.high, low = s.low, close = s.close,
				volume = s.volume, prices = 1, first_ts = s.bucket, last_ts = s.bucket,
				source = j.provider
		WHEN NOT MATCHED THEN
			INSERT (symbol, provider, "interval", bucket, open, high, low, close, volume,
					prices, first_ts, last_ts, source)
			VALUES (sym, j.provider, j."interval", s.bucket, s.open, s.high, s.low, s.close,
					s.volume, 1, s.bucket, s.bucket, j.provider);
		GET DIAGNOSTICS stored = ROW_COUNT;
	END IF;

	UPDATE md.backfill_jobs SET
		requests_done = requests_done + 1,
		retries = 0,
		bars_stored = bars_stored + stored,
		last_error = coalesce(gap_note, last_error),
		gaps = gaps + (gap_note IS NOT NULL)::integer,
		state = CASE WHEN s_to < j."to" OR j.cursor_symbol < cardinality(j.symbols) THEN 'running'
					 WHEN j.gaps > 0 OR gap_note IS NOT NULL THEN 'partial'
					 ELSE 'succeeded' END,
		cursor_symbol = CASE WHEN s_to < j."to" THEN cursor_symbol ELSE cursor_symbol + 1 END,
		cursor_from = CASE WHEN s_to < j."to" THEN s_to END,
		started_at = coalesce(started_at, now()),
		finished_at = CASE WHEN s_to < j."to" OR j.cursor_symbol < cardinality(j.symbols) THEN NULL ELSE now() END
	WHERE id = j.id;
	RETURN ceil(60000.0 * 100 / (per_minute * greatest(share, 1)))::integer;
END
$$;
COMMENT ON FUNCTION md._backfill_step() IS
	'runs one request of the oldest running backfill job and records it; the milliseconds to wait before the next (-1: no job runs)';
REVOKE ALL ON FUNCTION md._backfill_step() FROM PUBLIC;

-- the backfill worker is a kind md_worker_restart knows
CREATE OR REPLACE FUNCTION @extschema@.md_worker_restart(kind text) RETURNS integer
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

-- md.provider_status (/health/ready) finds each provider's newest success
-- and newest error through an index of each kind
DROP INDEX md.raw_responses_provider_idx;
CREATE INDEX raw_responses_ok_idx ON md.raw_responses (provider, received_at DESC, id DESC)
	WHERE error_class IS NULL OR error_class IN ('unknown_symbol', 'no_data');
CREATE INDEX raw_responses_errors_idx ON md.raw_responses (provider, received_at DESC, id DESC)
	WHERE error_class IN ('rate_limited', 'auth_failed', 'unavailable', 'malformed');
CREATE OR REPLACE VIEW md.provider_status AS
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

-- marketdata.raw_response_bodies = errors keeps a success's metadata only:
-- its body's size and SHA-256 are recorded for every response
ALTER TABLE md.raw_responses ADD COLUMN body_bytes integer, ADD COLUMN body_sha256 bytea;
COMMENT ON COLUMN md.raw_responses.body IS
	'the body as stored (secrets masked, hex when not text); NULL for a success when marketdata.raw_response_bodies = errors';
COMMENT ON COLUMN md.raw_responses.body_bytes IS 'size of the stored body in bytes, also when the body itself is not kept';
COMMENT ON COLUMN md.raw_responses.body_sha256 IS 'SHA-256 of the stored body, also when the body itself is not kept';
