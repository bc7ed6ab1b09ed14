-- extension/marketdata--0.1.0--0.2.0.sql
--	Upgrade of an installed 0.1.0 (extension/marketdata--0.1.0.sql) to 0.2.0.
--
--	Every change made to extension/schema.sql or extension/functions.sql for
--	0.2.0 is made here too, in the same commit, so that an upgraded database
--	equals a fresh install (test/t/040_upgrade.pl compares their dumps).
--	New columns go at the end of their table in schema.sql, where ALTER TABLE
--	ADD COLUMN puts them here.

\echo Use "ALTER EXTENSION marketdata UPDATE TO '0.2.0'" to load this file. \quit
