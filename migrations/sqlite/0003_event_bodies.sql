-- An event's body is its change alone: seq, incident, time and actor have their own columns,
-- and a press writes four events, so the copies were a tenth of what a press stored.
UPDATE incident_events SET body = json_extract(body, '$.change') WHERE json_extract(body, '$.change') IS NOT NULL;
