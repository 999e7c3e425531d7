-- The inbox (issue 25; docs/architecture.md, "Zones"): device messages an ingest session
-- stored before acknowledging them to the broker, for the engine running their zone to take
-- in the same transaction that handles them (SCALE-OUT.md, "Ingest"). A message is its
-- device's and its key's (its msg_id, or a digest of what could not be read): the primary key
-- absorbs the broker's repeats.
CREATE TABLE inbox (
    device_id   TEXT NOT NULL,
    msg_key     TEXT NOT NULL,
    -- The zone of the device's elder when it came in (0 for a device the ledger does not know).
    zone        INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, msg_key)
);
CREATE INDEX inbox_zone ON inbox (zone, received_at);
