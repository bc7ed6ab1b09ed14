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

-- The REST API's role: not a superuser, no privilege on any table. It
-- may run the SECURITY DEFINER md._api_* functions (md_api_grant) and
-- nothing else, so its password can neither point md.providers.base_url
-- at another host (where the provider keys would go), nor read
-- md.api_keys, nor delete prices. Keys stay with the superuser
-- (docs/security.md).
CREATE ROLE md_api WITH LOGIN PASSWORD :'api_password';
SELECT md_api_grant('md_api') \g /dev/null
