-- kozomol schema v35 for PostgreSQL: a subscription's id is never given again.
--
-- SQLite reused the id of an ended newest subscription, so notices queued for it went
-- to the next subscriber (its v35 rebuilds the table). Here the id is a sequence, which
-- never gives a number twice; this version only says so where the table is described.
COMMENT ON COLUMN violation_subscriptions.id IS
    'Never reused: notices are addressed subscription:{id}, and one still queued for an ended subscription must not reach another.';
