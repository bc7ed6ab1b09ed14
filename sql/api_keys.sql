-- API keys: shown once, stored as a SHA-256 hash with a role.
SET timezone = 'UTC';

CREATE TEMP TABLE k AS SELECT md_create_api_key('ci-reader') AS key;
SELECT key ~ '^mdk_[0-9a-f]{48}$' AS well_formed FROM k;

-- the key is not stored, its hash is
SELECT name, role, key_prefix = left((SELECT key FROM k), 12) AS prefix_ok,
	   key_hash = encode(sha256(convert_to((SELECT key FROM k), 'UTF8')), 'hex') AS hash_ok,
	   revoked_at IS NULL AS active
FROM md.api_keys;
SELECT count(*) FROM md.api_keys a, k WHERE a.key_hash = k.key OR a.key_prefix = k.key;

-- the key's role, for the API
SELECT md_api_key_role(key) FROM k;
SELECT md_api_key_role('mdk_0000');
SELECT md_create_api_key('ops', 'admin') AS ops_key \gset
SELECT md_api_key_role(:'ops_key');

-- revoke
SELECT md_revoke_api_key('ci-reader');
SELECT md_revoke_api_key('ci-reader');
SELECT md_api_key_role(key) FROM k;

-- two keys are never the same
SELECT count(DISTINCT md_create_api_key('k' || g, 'writer')) FROM generate_series(1, 20) g;

-- bad keys
SELECT md_create_api_key('ops', 'admin');
SELECT md_create_api_key('x', 'root');
SELECT md_create_api_key('bad name', 'reader');
SELECT md_create_api_key(NULL, 'reader');
SELECT md_create_api_key('y', NULL);
SELECT count(*) FROM md.api_keys;

-- only a superuser (or whoever is granted it) may mint keys
CREATE ROLE md_nobody;
SET ROLE md_nobody;
SELECT md_create_api_key('sneaky', 'admin');
RESET ROLE;
DROP ROLE md_nobody;
