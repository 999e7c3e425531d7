-- Offers across a zone border (issue 25; docs/architecture.md, "Zones", and
-- anxin_core::border): a responder held for another zone's incident says which, so that
-- whoever runs their zone next does not offer them until that zone lets go. NULL: held for
-- nothing of another zone (an offer or a job of their own zone's is in its incident's row).
-- Version 27 on both databases (26 is PostgreSQL's fence alone).
ALTER TABLE responders ADD COLUMN held_for BIGINT;
