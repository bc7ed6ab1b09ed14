-- docker/postgres/init-primary.sql: run once by entrypoint.sh on a new
-- primary, as the superuser, before the server listens on the network.
--   psql -v secrets=DIR -v slot=NAME -f init-primary.sql
-- DIR holds the passwords (files replication_password, api_db_password),
-- read here with psql's backquotes so they are on no command line.
\set ON_ERROR_STOP on
\set replication_password `cat :secrets/replication_password`
\set api_password `cat :secrets/api_db_password`

-- streaming replication: the replica connects as "replicator" and keeps
-- its WAL on the primary through a physical slot
CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD :'replication_password';
SELECT pg_create_physical_replication_slot(:'slot') \g /dev/null

CREATE DATABASE marketdata;
\connect marketdata
CREATE EXTENSION marketdata;

-- The REST API's role: not a superuser, so it cannot change settings,
-- read the hidden ones (marketdata.redis_url, kafka_bootstrap_servers,
-- secrets_file) or make admin keys. It runs the API's functions, which
-- read and write through the extension's SQL API: md_quote may fetch a
-- price and store it through the sink, /prices/poll writes
-- md.polling_jobs. md_create_api_key and md_revoke_api_key stay with the
-- superuser (docs/security.md).
CREATE ROLE md_api WITH LOGIN PASSWORD :'api_password';
GRANT USAGE ON SCHEMA md TO md_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA md TO md_api;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA md TO md_api;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA md TO md_api;
GRANT EXECUTE ON FUNCTION md_api_key_role(text) TO md_api;
-- keys: md_api_key_role (not SECURITY DEFINER) reads the hashes; only the
-- superuser makes or revokes keys
REVOKE INSERT, UPDATE, DELETE ON md.api_keys FROM md_api;
-- a month's partition of md.prices made later is reached through md.prices
