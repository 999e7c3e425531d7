-- Requests forwarded from other nodes and acted on (issue 25; docs/architecture.md, "Zones
-- over nodes"): written in the same commit as what they did, by the asking node's id for
-- them, so that a request asked again of a zone's next owner is answered, not repeated.
CREATE TABLE applied_requests (
    id     TEXT PRIMARY KEY,
    -- The answer given, as the forwarding frame carries it (JSON).
    answer TEXT NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX applied_requests_at ON applied_requests (at);
