-- kozomol schema v37 for PostgreSQL: when a bank said the money of its report was
-- paid (see the SQLite twin).
ALTER TABLE payment_reports ADD COLUMN paid_at TIMESTAMPTZ;
