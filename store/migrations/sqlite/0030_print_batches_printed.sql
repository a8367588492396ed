-- kozomol schema v30: when the print room printed a batch, and who.
--
-- A batch's letters are `sent` once merged; the print room downloads the batch,
-- prints and posts it, and records that here, once, so a batch is printed neither
-- never nor twice.
ALTER TABLE print_batches ADD COLUMN printed_at INTEGER;
ALTER TABLE print_batches ADD COLUMN printed_by TEXT;
