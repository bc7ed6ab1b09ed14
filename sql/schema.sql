-- The md schema: every table of the data model, documented.
SET timezone = 'UTC';

SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class') IS NOT NULL AS documented
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'md' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
ORDER BY c.relname;

-- every function of the extension has a comment and declared volatility
SELECT p.proname, p.provolatile, obj_description(p.oid, 'pg_proc') IS NOT NULL AS documented
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'marketdata')
  AND d.classid = 'pg_proc'::regclass
ORDER BY p.proname;

-- built-in providers; sandbox is never a failover choice
SELECT name, priority, enabled, failover FROM md.providers ORDER BY priority;

-- the default Kafka subscription
SELECT topic, group_id, format, start_position, enabled FROM md.kafka_subscriptions;

-- md.prices is partitioned by range of ts
SELECT partstrat, partnatts FROM pg_partitioned_table WHERE partrelid = 'md.prices'::regclass;

-- the settings, with their defaults
SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'marketdata.%' ORDER BY name;

-- the prefix is reserved: a typo is an error, not a silent new setting
SET marketdata.no_such_setting = 1;
