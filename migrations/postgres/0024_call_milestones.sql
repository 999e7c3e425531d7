-- Reports (issue 24): each call to the hotline's milestones in a row of its own, as 0022 keeps
-- each incident's, so that a report reads a period's calls by when they rang instead of the
-- events of every incident a call rang on. The definitions are
-- `anxin_core::CallMilestones`: rang the consoles, first picked up by a dispatcher, ended.
-- A call is one call id on one incident (every event of a call is on the incident it rang
-- on). Folded behind the engine's commits with the incidents' milestones
-- (anxin_store::milestones, under the same marks); a call a dispatcher placed has a row with no
-- ringing, and is in no report.
CREATE TABLE call_milestones (
    incident_id BIGINT NOT NULL,
    call_id     TEXT NOT NULL,
    -- The station the elder was enrolled with when the call was folded in, as for incidents.
    station_id  TEXT,
    rang_at     BIGINT,
    answered_at BIGINT,
    ended_at    BIGINT,
    PRIMARY KEY (incident_id, call_id)
);

-- A period's calls.
CREATE INDEX call_milestones_rang ON call_milestones (rang_at);

-- The calls stored before, from their events, once (the call id read from the event's JSON
-- body; each under its elder's station as enrolled now). The fold's marks already stand past
-- them, and a fold merges anything it meets again to the same row.
INSERT INTO call_milestones (incident_id, call_id, station_id, rang_at, answered_at, ended_at)
SELECT c.incident_id, c.call_id, el.station_id, c.rang_at, c.answered_at, c.ended_at
FROM (
  SELECT e.incident_id, (e.body::json ->> 'call_id') AS call_id,
    MIN(CASE WHEN e.change = 'call_rang' THEN e.at END) AS rang_at,
    MIN(CASE WHEN e.change = 'call_answered' AND e.actor LIKE 'dispatcher:%' THEN e.at END) AS answered_at,
    MIN(CASE WHEN e.change = 'call_ended' THEN e.at END) AS ended_at
  FROM incident_events e
  WHERE e.change IN ('call_rang', 'call_answered', 'call_ended')
  GROUP BY e.incident_id, (e.body::json ->> 'call_id')
) AS c
JOIN incidents i ON i.id = c.incident_id
LEFT JOIN elders el ON el.id = i.elder_id;
