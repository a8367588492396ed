-- kozomol schema v13 for SQLite: payments reversed.
--
-- A payment its reporter cancels (a bank's setPaymentLegal status 2, a provider's
-- reversal) stays in the ledger, marked reversed: it no longer counts towards the fine,
-- and the same payment cannot be reversed twice.
ALTER TABLE payments ADD COLUMN reversed_at INTEGER;
ALTER TABLE payments ADD COLUMN reversed_by TEXT;
ALTER TABLE payments ADD COLUMN reversal_reason TEXT;
