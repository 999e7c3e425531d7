-- Reports (issue 24): each incident's milestones in a narrow row of their own, kept as its
-- events are stored (each batch's events of an incident folded in and merged with the row in
-- the same commit: the earliest time, a flag once set stays set), so a report reads one small
-- row an incident, in the order they opened, and none of its trail or its state. The
-- definitions are `anxin_core::Milestones`; 0023 fills them in for the incidents stored
-- before.
CREATE TABLE incident_milestones (
    opened_at      INTEGER NOT NULL,
    id             INTEGER NOT NULL,
    pressed_at     INTEGER NOT NULL,
    -- The station the elder was enrolled with when the incident was folded in: a report by
    -- station counts it there, however the elder's enrolment changes after.
    station_id     TEXT,
    emergency_at   INTEGER,
    answered_at    INTEGER,
    dispatched_at  INTEGER,
    first_offer_at INTEGER,
    accepted_at    INTEGER,
    on_scene_at    INTEGER,
    ended_at       INTEGER,
    nobody_going   INTEGER NOT NULL DEFAULT 0,
    called_120     INTEGER NOT NULL DEFAULT 0,
    called_110     INTEGER NOT NULL DEFAULT 0,
    called_119     INTEGER NOT NULL DEFAULT 0,
    false_alarm    INTEGER NOT NULL DEFAULT 0,
    cancelled      INTEGER NOT NULL DEFAULT 0,
    -- A period's rows are one range of the key, and a commit finds an incident's row by it.
    PRIMARY KEY (opened_at, id)
) WITHOUT ROWID;

-- Per zone, the last event folded into `incident_milestones` (`seq`): the fold runs behind the
-- engine's commits, in `seq` order (anxin_store::milestones).
CREATE TABLE milestones_folded (
    zone INTEGER PRIMARY KEY,
    seq  INTEGER NOT NULL
);
