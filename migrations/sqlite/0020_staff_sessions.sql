-- Staff sessions in the store (issue 25, "Consoles and phones on any node"): a dispatcher
-- signed in on one node stays signed in when a proxy sends their console to another, or when
-- the one node they use restarts. Only the token's SHA-256 is kept.
CREATE TABLE staff_sessions (
    token_sha256 TEXT PRIMARY KEY,
    staff_id     TEXT NOT NULL,
    -- SHA-256 of the staff member's role and password hash when the session opened: a change
    -- of either ends it on every node, whichever learnt of the change.
    staff_key    TEXT NOT NULL,
    opened_at    BIGINT NOT NULL,
    -- Last seen in use, to the minute (a session idle past 14 hours has ended).
    used_at      BIGINT NOT NULL
);
CREATE INDEX staff_sessions_used ON staff_sessions (used_at);
