-- kozomol schema v21 for PostgreSQL: retention of personal data (store/src/retention.rs).
--
-- When a settled case's personal data were purged: the owner's and driver's names,
-- identity numbers and addresses, the addresses notices went to, what an appellant
-- wrote. The case itself, its resolution, payments and audit rows stay. The index
-- holds only the cases not purged yet, oldest first, which the purge walks. A
-- nullable column without a default rewrites nothing.
ALTER TABLE cases ADD COLUMN personal_data_purged_at TIMESTAMPTZ;
CREATE INDEX cases_retention ON cases (captured_at) WHERE personal_data_purged_at IS NULL;

-- A case's deliveries, which the purge rewrites (the outbox's own indexes are by
-- channel and due time).
CREATE INDEX deliveries_case ON deliveries (case_id);

-- The same for a closed accident's participants.
ALTER TABLE accidents ADD COLUMN personal_data_purged_at TIMESTAMPTZ;
