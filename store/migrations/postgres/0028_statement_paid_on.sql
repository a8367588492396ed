-- kozomol schema v28: the day a statement says the payer paid.
--
-- camt.053 gives it as a transaction's RltdDts/AccptncDtTm (the payer's bank took the
-- payment), kozomol's CSV as `paid_date`; kept where it is the booking day or up to
-- five days before. A payment applied from the line is dated that day, not the booking
-- day: money paid on a discount's last day and booked the next keeps the discount.
ALTER TABLE statement_lines ADD COLUMN paid_on DATE;
