-- kozomol schema v34: accounts an admin disables.
--
-- An officer who leaves, or a login whose password got out, must stop working at once:
-- a disabled account logs in no more, and its tokens and sessions are deleted with the
-- change (tokens had no end).
ALTER TABLE accounts ADD COLUMN disabled_at TIMESTAMPTZ;
