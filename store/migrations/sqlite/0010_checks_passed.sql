-- kozomol schema v10 for SQLite: the checks' mark.
--
-- When an approved case passes the checks before issuing, the mark is set under a
-- per-plate lock (here: the one writer) before the owner lookup asks the bus, so a
-- case of the same act checked meanwhile defers to it even though it is still
-- `approved`. Unix milliseconds; NULL: not passed.
ALTER TABLE cases ADD COLUMN checks_passed_at INTEGER;
