-- Carers' visits (issue 21 point 4): the visit log, a row a visit. The engine writes it in
-- its commits when a carer checks in at an elder's home, says they are still there, checks
-- out, or is overdue (the lone-worker timer). Open visits are read back at start, so a
-- restart keeps them and their timers.
CREATE TABLE carer_visits (
    id                BIGINT PRIMARY KEY,
    -- the carer: a responder whose skills include `carer`
    carer_id          TEXT NOT NULL,
    elder_id          TEXT NOT NULL,
    -- ms since the epoch
    checked_in_at     BIGINT NOT NULL,
    -- where the phone said the carer was at the check-in, WGS-84 degrees
    checkin_lat       DOUBLE PRECISION NOT NULL,
    checkin_lon       DOUBLE PRECISION NOT NULL,
    -- from there to the elder's registered home (within `carers.checkin_radius_m`)
    distance_m        DOUBLE PRECISION NOT NULL,
    -- the check-in or the last "still here"
    last_seen_at      BIGINT NOT NULL,
    -- when the carer is overdue unless heard from again
    due_at            BIGINT NOT NULL,
    -- NULL while the visit is open
    checked_out_at    BIGINT,
    checkout_lat      DOUBLE PRECISION,
    checkout_lon      DOUBLE PRECISION,
    -- the lone-worker incident open on the visit, if any
    alert_incident_id BIGINT,
    -- whether a lone-worker alert was ever raised on it
    overdue           BOOLEAN NOT NULL,
    is_open           BOOLEAN NOT NULL,
    -- the engine's time of the row's last change; an older row never replaces a newer
    updated_at        BIGINT NOT NULL
);
CREATE INDEX carer_visits_open ON carer_visits (id) WHERE is_open;
CREATE INDEX carer_visits_carer ON carer_visits (carer_id, checked_in_at);
CREATE INDEX carer_visits_elder ON carer_visits (elder_id, checked_in_at);
