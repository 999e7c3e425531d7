-- Telephones (issue 22): the number of a device's SIM card, so that a call from that number
-- is known to be the device's. As the ledger wrote it (digits, maybe a leading + and spaces
-- or dashes); NULL for a device that cannot dial.
--
-- No index. The engine reads every live device once at start and matches a caller's number
-- from memory, never from this table; the ledger page's search looks for the text anywhere in
-- the column (LIKE '%...%'), which a B-tree index cannot serve. Nor a unique index: the
-- import check refuses a number two devices would share, row by row, while a constraint here
-- would fail the engine's whole commit (presses and incidents with it) over one ledger row.
ALTER TABLE devices ADD COLUMN sim TEXT;
