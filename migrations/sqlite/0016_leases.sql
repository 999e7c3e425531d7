-- Leases with fencing (issue 25): taken only on PostgreSQL, where engines on several machines
-- share one store. A SQLite store has one engine; the table keeps both schemas alike.
CREATE TABLE leases (
    key        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    addr       TEXT NOT NULL DEFAULT ''
);
