-- Device health (issue 21). A device's model sets how long it may be silent
-- (`[health.models]`).
ALTER TABLE devices ADD COLUMN model TEXT;

-- What the engine last knew of each device's heartbeat, battery and signal, written in
-- snapshots (not a row a heartbeat) and read back at start. A restart loses at most one
-- snapshot interval of it.
CREATE TABLE device_health (
    device_id   TEXT PRIMARY KEY,
    -- the last message heard from it, ms since the epoch
    last_seen   BIGINT,
    -- the heartbeat interval it reports, seconds
    interval_s  INTEGER,
    battery_pct SMALLINT,
    -- dBm
    rssi        SMALLINT,
    charging    BOOLEAN,
    worn        BOOLEAN,
    -- overdue or switched off
    offline     BOOLEAN NOT NULL,
    -- when this snapshot row was written, ms since the epoch
    saved_at    BIGINT NOT NULL
);
