-- kozomol schema v26: the dead letters whose bytes the retention purge has yet to drop.
--
-- The purge takes the oldest letters that still hold bytes, a bounded number a pass;
-- without an index it would step over every letter purged before on each pass, a
-- table that only grows. Only the letters still holding bytes are indexed.
CREATE INDEX dead_letters_unpurged ON dead_letters (id) WHERE length(raw) > 0;
