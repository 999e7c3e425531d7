-- The live ledger (issue 20): entries are created, changed and retired while the engine
-- runs. Retiring keeps the row (and every incident that names it); `ledger_seq` is the last
-- change written to the row, so a change never overwrites a later one.
ALTER TABLE elders ADD COLUMN retired_at BIGINT;
ALTER TABLE elders ADD COLUMN ledger_seq BIGINT NOT NULL DEFAULT 0;
-- The station the elder is enrolled with (also in `profile`), to list a station's elders.
ALTER TABLE elders ADD COLUMN station_id TEXT;
CREATE INDEX elders_station ON elders (station_id);
ALTER TABLE devices ADD COLUMN retired_at BIGINT;
ALTER TABLE devices ADD COLUMN ledger_seq BIGINT NOT NULL DEFAULT 0;
-- The device's broker password as Mosquitto's `$7$` hash, when set through the ledger: the
-- embedded broker loads it at start. The password itself is never stored.
ALTER TABLE devices ADD COLUMN mqtt_password_hash TEXT;
ALTER TABLE stations ADD COLUMN retired_at BIGINT;
ALTER TABLE stations ADD COLUMN ledger_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE responders ADD COLUMN retired_at BIGINT;
ALTER TABLE responders ADD COLUMN ledger_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN retired_at BIGINT;
ALTER TABLE staff ADD COLUMN ledger_seq BIGINT NOT NULL DEFAULT 0;

-- Every change to the ledger, with who made it: the audit trail and an entry's history.
CREATE TABLE ledger_events (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    -- staff:<id>, or import:<file> for a bulk import
    actor     TEXT NOT NULL,
    -- elder, device, station, responder or staff
    kind      TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    -- created, updated or retired
    action    TEXT NOT NULL,
    -- The entry as it became (as it was, for a retirement), as JSON; a staff member's
    -- password hash is left out.
    body      TEXT NOT NULL
);
CREATE INDEX ledger_events_entity ON ledger_events (kind, entity_id, seq);
CREATE INDEX devices_elder ON devices (elder_id);

-- Import mappings, saved by name: which column of a spreadsheet fills which field.
CREATE TABLE import_mappings (
    name       TEXT PRIMARY KEY,
    -- elders, devices, stations or responders
    kind       TEXT NOT NULL,
    -- The mapping as JSON ({"kind": ..., "columns": {field: header}}).
    body       TEXT NOT NULL,
    saved_at   BIGINT NOT NULL,
    saved_by   TEXT NOT NULL
);
