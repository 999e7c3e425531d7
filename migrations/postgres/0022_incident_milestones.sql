-- Reports (issue 24): each incident's milestones in a narrow row of their own, kept as its
-- events are stored (each batch's events of an incident folded in and merged with the row in
-- the same commit: the earliest time, a flag once set stays set), so a report reads one small
-- row an incident, in the order they opened, and none of its trail or its state. The
-- definitions are `anxin_core::Milestones`; 0023 fills them in for the incidents stored
-- before.
CREATE TABLE incident_milestones (
    opened_at      BIGINT NOT NULL,
    id             BIGINT NOT NULL,
    pressed_at     BIGINT NOT NULL,
    -- The station the elder was enrolled with when the incident was folded in: a report by
    -- station counts it there, however the elder's enrolment changes after.
    station_id     TEXT,
    emergency_at   BIGINT,
    answered_at    BIGINT,
    dispatched_at  BIGINT,
    first_offer_at BIGINT,
    accepted_at    BIGINT,
    on_scene_at    BIGINT,
    ended_at       BIGINT,
    nobody_going   BOOLEAN NOT NULL DEFAULT FALSE,
    called_120     BOOLEAN NOT NULL DEFAULT FALSE,
    called_110     BOOLEAN NOT NULL DEFAULT FALSE,
    called_119     BOOLEAN NOT NULL DEFAULT FALSE,
    false_alarm    BOOLEAN NOT NULL DEFAULT FALSE,
    cancelled      BOOLEAN NOT NULL DEFAULT FALSE,
    -- A period's rows are one range of the key, and a commit finds an incident's row by it.
    PRIMARY KEY (opened_at, id)
);

-- Per zone, the last event folded into `incident_milestones` (`seq`): the fold runs behind the
-- engine's commits, in `seq` order (anxin_store::milestones).
CREATE TABLE milestones_folded (
    zone BIGINT PRIMARY KEY,
    seq  BIGINT NOT NULL
);
