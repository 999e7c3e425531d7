-- Elders' profiles (health, living situation, door notes, contacts) as one JSON document,
-- and the call centre's staff who sign in to the console.
ALTER TABLE elders ADD COLUMN profile TEXT NOT NULL DEFAULT '{}';

CREATE TABLE staff (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    -- dispatcher or supervisor
    role          TEXT NOT NULL,
    -- Argon2id PHC string; the password itself is never stored.
    password_hash TEXT NOT NULL
);
