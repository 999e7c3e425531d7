-- Zones (issue 25; docs/architecture.md, "Zones"): the zone each station, its responders and
-- the elders enrolled with it are run in. 0, a district that has not been split, unless the
-- ledger says. Numbers an engine hands out carry their zone (zone * 2^40 + n), so a zone's
-- highest number is read within its range.
ALTER TABLE stations ADD COLUMN zone INTEGER NOT NULL DEFAULT 0;
