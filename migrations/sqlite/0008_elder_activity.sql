-- Abnormal inactivity (issue 21): elders living alone whose devices report movement are
-- watched. What the engine keeps of each, written in the health snapshots and read back at
-- start, so that a restart keeps the waking hours it learned.
CREATE TABLE elder_activity (
    elder_id    TEXT PRIMARY KEY,
    -- the device the last activity came from
    device_id   TEXT NOT NULL,
    -- the last activity, ms since the epoch
    last_active BIGINT NOT NULL,
    -- the first local day watched, and the day `days` was last written for (days since
    -- 1970-01-01 at the centre's UTC offset)
    first_day   INTEGER NOT NULL,
    last_day    INTEGER NOT NULL,
    -- 28 bitmasks of the hours with activity (bit h: from h:00), comma-separated, slot
    -- `day % 28`
    days        TEXT NOT NULL,
    -- when this snapshot row was written, ms since the epoch
    saved_at    BIGINT NOT NULL
);
