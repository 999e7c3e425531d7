-- Reports (issue 24): welfare checks, and the welfare programme's tasks among them, in each
-- incident's row of milestones. `welfare`: the reason a welfare check opened with
-- (`device_offline`, `power_off`, `low_battery`, `inactive`, and the programme's
-- `scheduled_call` and `scheduled_visit`; NULL for any other incident); `outcome`: the code its first end gave (`well`, `needs_service`,
-- `needs_help`, `no_answer`: the first word of a resolved or closed incident's outcome; NULL
-- for any other, a cancel, a false alarm, or no end yet). The definitions are
-- `anxin_core::Milestones`'; the fold keeps them from here on.
ALTER TABLE incident_milestones ADD COLUMN welfare TEXT;
ALTER TABLE incident_milestones ADD COLUMN outcome TEXT;

-- The incidents stored before, from their events, once. The first end is found as the least
-- `at * 8 + code` (portable: no window function or JSON needed), its code read back modulo 8;
-- only rows with something to say are written.
UPDATE incident_milestones SET welfare = t.welfare, outcome = CASE t.first_end % 8 WHEN 1 THEN 'well' WHEN 2 THEN 'needs_service' WHEN 3 THEN 'needs_help'
    WHEN 4 THEN 'no_answer' END
FROM (
  SELECT e.incident_id,
    MAX(CASE
      WHEN e.change = 'opened' AND e.body LIKE '%"welfare":"device_offline"%' THEN 'device_offline'
      WHEN e.change = 'opened' AND e.body LIKE '%"welfare":"power_off"%' THEN 'power_off'
      WHEN e.change = 'opened' AND e.body LIKE '%"welfare":"low_battery"%' THEN 'low_battery'
      WHEN e.change = 'opened' AND e.body LIKE '%"welfare":"inactive"%' THEN 'inactive'
      WHEN e.change = 'opened' AND e.body LIKE '%"welfare":"scheduled_call"%' THEN 'scheduled_call'
      WHEN e.change = 'opened' AND e.body LIKE '%"welfare":"scheduled_visit"%' THEN 'scheduled_visit'
    END) AS welfare,
    MIN(CASE WHEN e.change IN ('resolved', 'closed') THEN e.at * 8 + CASE
        WHEN e.body LIKE '%"outcome":"well"%' OR e.body LIKE '%"outcome":"well:%' OR e.body LIKE '%"outcome":"well %' THEN 1
        WHEN e.body LIKE '%"outcome":"needs_service"%' OR e.body LIKE '%"outcome":"needs_service:%' OR e.body LIKE '%"outcome":"needs_service %' THEN 2
        WHEN e.body LIKE '%"outcome":"needs_help"%' OR e.body LIKE '%"outcome":"needs_help:%' OR e.body LIKE '%"outcome":"needs_help %' THEN 3
        WHEN e.body LIKE '%"outcome":"no_answer"%' OR e.body LIKE '%"outcome":"no_answer:%' OR e.body LIKE '%"outcome":"no_answer %' THEN 4
        ELSE 0 END
      WHEN e.change IN ('cancelled', 'false_alarm') THEN e.at * 8 END) AS first_end
  FROM incident_events e
  WHERE e.change IN ('opened', 'resolved', 'closed', 'cancelled', 'false_alarm')
  GROUP BY e.incident_id
) AS t
WHERE incident_milestones.id = t.incident_id AND (t.welfare IS NOT NULL OR t.first_end % 8 > 0);
