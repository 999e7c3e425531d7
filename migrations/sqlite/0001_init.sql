-- Anxin schema, version 1 (SQLite). Times are Unix milliseconds; positions WGS-84 degrees.

CREATE TABLE elders (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    address  TEXT NOT NULL,
    home_lat REAL NOT NULL,
    home_lon REAL NOT NULL,
    phone    TEXT,
    notes    TEXT NOT NULL DEFAULT ''
);

CREATE TABLE devices (
    id       TEXT PRIMARY KEY,
    elder_id TEXT NOT NULL REFERENCES elders (id)
);

CREATE TABLE stations (
    id    TEXT PRIMARY KEY,
    name  TEXT NOT NULL,
    lat   REAL NOT NULL,
    lon   REAL NOT NULL,
    phone TEXT,
    -- Minutes; NULL: the engine's default service circle.
    service_circle_min INTEGER
);

CREATE TABLE responders (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    station_id TEXT NOT NULL REFERENCES stations (id),
    phone      TEXT,
    -- SHA-256 (hex) of the responder's sign-in token; the token itself is never stored.
    token_sha256 TEXT,
    -- When lat/lon came from the responder's phone (Unix ms); NULL for a registered base.
    position_at BIGINT,
    -- foot, ebike or car
    mode       TEXT NOT NULL DEFAULT 'foot',
    -- Comma-separated skills, e.g. first_aid
    skills     TEXT NOT NULL DEFAULT '',
    lat        REAL NOT NULL,
    lon        REAL NOT NULL,
    on_duty    INTEGER NOT NULL
);

-- Current state of each incident; `body` is the whole state as JSON.
CREATE TABLE incidents (
    id         INTEGER PRIMARY KEY,
    device_id  TEXT NOT NULL,
    elder_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    is_open    INTEGER NOT NULL,
    pressed_at INTEGER NOT NULL,
    opened_at  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX incidents_open ON incidents (is_open) WHERE is_open = 1;

-- The audit trail: append-only, numbered in the order the engine decided.
CREATE TABLE incident_events (
    seq         INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    change      TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, seq);

-- Facts about this database, such as `history_id`: the identity of its sequence of events.
CREATE TABLE anxin_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every device message that changed something, so a redelivery changes nothing.
CREATE TABLE device_messages (
    device_id   TEXT NOT NULL,
    msg_id      TEXT NOT NULL,
    event       TEXT,
    received_at INTEGER NOT NULL,
    incident_id INTEGER,
    PRIMARY KEY (device_id, msg_id)
);
CREATE INDEX device_messages_received ON device_messages (received_at);
