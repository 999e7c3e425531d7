-- The wallboard (issue 24): at start the supervisors' day-so-far figures are rebuilt from the
-- day's events, read by time (`Store::events_since`), which without this index reads the
-- whole trail.
CREATE INDEX incident_events_at ON incident_events (at);
