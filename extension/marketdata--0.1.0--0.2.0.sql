-- extension/marketdata--0.1.0--0.2.0.sql
--	Upgrade of an installed 0.1.0 (extension/marketdata--0.1.0.sql) to 0.2.0.
--
--	Every change made to extension/schema.sql or extension/functions.sql for
--	0.2.0 is made here too, in the same commit, so that an upgraded database
--	equals a fresh install (test/t/040_upgrade.pl compares their dumps).
--	New columns go at the end of their table in schema.sql, where ALTER TABLE
--	ADD COLUMN puts them here.

\echo Use "ALTER EXTENSION marketdata UPDATE TO '0.2.0'" to load this file. \quit

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
