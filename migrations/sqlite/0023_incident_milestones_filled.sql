-- Reports (issue 24): the milestones of every incident stored before 0022, from its events,
-- once (each under its elder's station as enrolled now). The same definitions as `anxin_core::Milestones` in SQL: a kind or a number is read
-- from the event's compact JSON body by `LIKE` (serde writes `"kind":"sos"` with no spaces,
-- and a quote inside a string value is escaped, so a pattern cannot match inside free text).
-- One pass over the trail, grouped by incident: on a large store this is the slow part of
-- the upgrade (docs/benchmarks.md times it).
INSERT INTO incident_milestones (opened_at, id, pressed_at, station_id, emergency_at, answered_at,
    dispatched_at, first_offer_at, accepted_at, on_scene_at, ended_at, nobody_going, called_120,
    called_110, called_119, false_alarm, cancelled)
SELECT i.opened_at, i.id, i.pressed_at, el.station_id, f.emergency_at, f.answered_at, f.dispatched_at,
    f.first_offer_at, f.accepted_at, f.on_scene_at, f.ended_at,
    COALESCE(f.nobody_going, 0) > 0, COALESCE(f.called_120, 0) > 0, COALESCE(f.called_110, 0) > 0,
    COALESCE(f.called_119, 0) > 0, COALESCE(f.false_alarm, 0) > 0, COALESCE(f.cancelled, 0) > 0
FROM incidents i
LEFT JOIN elders el ON el.id = i.elder_id
LEFT JOIN (
  SELECT e.incident_id,
    MIN(CASE WHEN (e.change = 'opened' AND (e.body LIKE '%"kind":"sos"%' OR e.body LIKE '%"kind":"fall"%'
        OR e.body LIKE '%"kind":"fire"%' OR e.body LIKE '%"kind":"intrusion"%'))
      OR (e.change = 'kind_changed' AND (e.body LIKE '%"to":"sos"%' OR e.body LIKE '%"to":"fall"%'
        OR e.body LIKE '%"to":"fire"%' OR e.body LIKE '%"to":"intrusion"%')) THEN e.at END) AS emergency_at,
    MIN(CASE WHEN e.actor LIKE 'dispatcher:%' OR e.change = 'accepted' THEN e.at END) AS answered_at,
    MIN(CASE WHEN e.change IN ('offered', 'assigned') THEN e.at END) AS dispatched_at,
    MIN(CASE WHEN e.change = 'offered' THEN e.at END) AS first_offer_at,
    MIN(CASE WHEN e.change = 'accepted' THEN e.at END) AS accepted_at,
    MIN(CASE WHEN e.change = 'on_scene' OR (e.change = 'resolved' AND e.actor LIKE 'responder:%') THEN e.at END) AS on_scene_at,
    MIN(CASE WHEN e.change IN ('resolved', 'closed', 'cancelled', 'false_alarm') THEN e.at END) AS ended_at,
    SUM(CASE WHEN e.change = 'nobody_going' THEN 1 ELSE 0 END) AS nobody_going,
    SUM(CASE WHEN e.change = 'emergency_called' AND e.body LIKE '%"number":"120"%' THEN 1 ELSE 0 END) AS called_120,
    SUM(CASE WHEN e.change = 'emergency_called' AND e.body LIKE '%"number":"110"%' THEN 1 ELSE 0 END) AS called_110,
    SUM(CASE WHEN e.change = 'emergency_called' AND e.body LIKE '%"number":"119"%' THEN 1 ELSE 0 END) AS called_119,
    SUM(CASE WHEN e.change = 'false_alarm' THEN 1 ELSE 0 END) AS false_alarm,
    SUM(CASE WHEN e.change = 'cancelled' THEN 1 ELSE 0 END) AS cancelled
  FROM incident_events e
  GROUP BY e.incident_id
) AS f ON f.incident_id = i.id;

-- And each zone's mark: its last event, all of them folded in above.
INSERT INTO milestones_folded (zone, seq)
SELECT seq / 1099511627776, MAX(seq) FROM incident_events GROUP BY seq / 1099511627776;
