-- Reports (issue 24): a period's incidents are found by when they opened, then their events
-- by `incident_events_incident`; without this index a month's report reads every incident.
CREATE INDEX incidents_opened ON incidents (opened_at);
