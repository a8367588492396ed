-- kozomol schema v10 for PostgreSQL: the checks' mark.
--
-- When an approved case passes the checks before issuing, the mark is set under a
-- per-plate lock (a transaction-scoped advisory lock on the plate's hash) before the
-- owner lookup asks the bus, so a case of the same act checked meanwhile defers to it
-- even though it is still `approved`. NULL: not passed.
ALTER TABLE cases ADD COLUMN checks_passed_at TIMESTAMPTZ;
