-- A fenced commit before 2026-12-07: the lock, then the epoch, then the write (benches/pgbench/run).
BEGIN;
SELECT pg_advisory_xact_lock_shared(hashtextextended('zone:1', 0));
SELECT epoch FROM leases WHERE key = 'zone:1';
WITH w AS (INSERT INTO t (device_id, body) SELECT * FROM unnest(ARRAY['d1']::text[], ARRAY['{"x":1}']::text[])) SELECT 1;
COMMIT;
