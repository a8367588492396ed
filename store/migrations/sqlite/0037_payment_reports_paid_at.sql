-- kozomol schema v37 for SQLite: when a bank said the money of its report was paid.
--
-- A report matched to money a statement booked first has no payment of its own, so a
-- bank's cancel naming sum and time (Tunduk's setPaymentLegal) found it by the sum
-- alone: of two reports of one sum for one fine, the later could be taken back for the
-- earlier. Rows from before this version have none, and are found by the sum as then.
ALTER TABLE payment_reports ADD COLUMN paid_at INTEGER;
