-- Leases with fencing (issue 25, docs/architecture.md "Leases and fencing"): who holds a
-- zone or an ingest slot, under which epoch, until when on the database's clock. Safety rests
-- on the epoch alone: every commit of a zone's engine checks it inside its own transaction.
CREATE TABLE leases (
    key        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    -- Where the holder takes commands for what it holds (a node's HTTP address).
    addr       TEXT NOT NULL DEFAULT ''
);
