-- A fenced commit since 2026-12-07: the write and `anxin_fence` in one statement (benches/pgbench/run).
BEGIN;
WITH w AS (INSERT INTO t (device_id, body) SELECT * FROM unnest(ARRAY['d1']::text[], ARRAY['{"x":1}']::text[])) SELECT anxin_fence(ARRAY['zone:1'], ARRAY[7::bigint]);
COMMIT;
