-- kozomol schema v29: the reporter's id of the cancel that took a payment back.
--
-- A bank's SOAP cancel names the payment by code, sum and time only. Kept here, the
-- cancel's own message id lets the same cancel sent again find the payment it took
-- back, never a later payment of the same sum and time (a corrected payment the bank
-- sent after its cancel). Payments reversed before this version have none: a repeat
-- of such a cancel is matched by sum and time as before.
ALTER TABLE payments ADD COLUMN reversal_id TEXT;
