-- The scheduled welfare programme (issue 21): for each elder with a schedule, when their
-- last call and visit were done and how many calls in a row went unanswered, written with
-- the health snapshots and read back at start. The tasks themselves are incidents (kind
-- `welfare`, reason `scheduled_call` or `scheduled_visit`), stored with the engine's commits.
CREATE TABLE welfare_programme (
    elder_id       TEXT PRIMARY KEY,
    -- ms since the epoch; NULL: never
    call_done      BIGINT,
    visit_done     BIGINT,
    -- unanswered calls in a row
    call_tries     INTEGER NOT NULL,
    -- when an unanswered call or visit is tried again; NULL: none waiting
    call_retry_at  BIGINT,
    visit_retry_at BIGINT,
    -- when this snapshot row was written, ms since the epoch
    saved_at       BIGINT NOT NULL
);
