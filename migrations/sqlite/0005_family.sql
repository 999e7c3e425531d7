-- Families (issue 19): the durable outbox of notifications to elders' contacts, the
-- contacts' sign-in tokens for the family page, and their Web Push subscriptions.

-- One row per notification, inserted in the same commit as the `family_told` event that
-- caused it; `key` (`n{seq}` of that event) is the idempotency key a gateway sees on every
-- try. The delivery worker moves `status` on: pending -> sent -> delivered, or -> dead.
CREATE TABLE notifications (
    key             TEXT PRIMARY KEY,
    incident_id     BIGINT NOT NULL,
    elder_id        TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    -- sms, voice or push: the contact's preferred channel when it was made
    channel         TEXT NOT NULL,
    -- emergency or low
    priority        TEXT NOT NULL,
    -- The whole notification as JSON (text, language, notice, recipient).
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    -- pending, sent, delivered or dead
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Not tried before this (quiet hours, then the retry backoff).
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    -- The channel it actually went by (push falls back to the gateway's text).
    sent_via        TEXT,
    sent_at         BIGINT,
    -- Delivered (by the gateway's receipt) or given up.
    done_at         BIGINT
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_incident ON notifications (incident_id);

-- A contact's sign-in tokens for /family, by SHA-256 (hex); the token itself is never
-- stored. Issuing a new one revokes the contact's earlier ones.
CREATE TABLE family_tokens (
    token_sha256 TEXT PRIMARY KEY,
    elder_id     TEXT NOT NULL,
    contact_id   TEXT NOT NULL,
    issued_at    BIGINT NOT NULL,
    -- The staff id who issued it (or `demo`).
    issued_by    TEXT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX family_tokens_contact ON family_tokens (elder_id, contact_id);

-- Web Push subscriptions a contact's family page registered (RFC 8030 endpoint, RFC 8291
-- keys, base64url).
CREATE TABLE push_subscriptions (
    endpoint   TEXT PRIMARY KEY,
    elder_id   TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_contact ON push_subscriptions (elder_id, contact_id);
