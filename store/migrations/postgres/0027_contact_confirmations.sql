-- kozomol schema v27: contacts a citizen leaves through the portal are confirmed first
-- and serve the one vehicle whose certificate was shown.
--
-- A contact proves deliveries (an SMS gateway's report starts the discount and appeal
-- clocks), so it is stored only once the code sent to it came back: until then it sits
-- in contact_confirmations (the code's SHA-256 with the request's handle, never the
-- code). A contact taken from the portal names the plate key of the vehicle the
-- citizen proved (`plate_key`), and only that vehicle's resolutions go to it; '' is a
-- contact a desk officer took after seeing the owner's papers: every resolution of the
-- owner.
-- Contacts the portal stored before this version were never confirmed (and the
-- scope below would make them serve every vehicle): they go, and the texts and
-- e-mails still queued to them only, with them. The owners leave them again.
UPDATE deliveries SET state = 'failed', next_attempt_at = NULL,
    last_error = 'left on the portal unconfirmed before contacts were confirmed: dropped'
 WHERE state = 'queued' AND channel IN ('sms', 'email')
   AND EXISTS (SELECT 1 FROM owner_contacts o JOIN owner_lookups l ON l.owner_id = o.owner_id
               WHERE l.case_id = deliveries.case_id AND o.channel = deliveries.channel
                 AND o.address = deliveries.address AND o.added_by = 'portal')
   AND NOT EXISTS (SELECT 1 FROM owner_contacts o JOIN owner_lookups l ON l.owner_id = o.owner_id
                   WHERE l.case_id = deliveries.case_id AND o.channel = deliveries.channel
                     AND o.address = deliveries.address AND o.added_by <> 'portal');
DELETE FROM owner_contacts WHERE added_by = 'portal';

ALTER TABLE owner_contacts ADD COLUMN plate_key TEXT NOT NULL DEFAULT '';
ALTER TABLE owner_contacts DROP CONSTRAINT owner_contacts_owner_id_channel_address_key;
ALTER TABLE owner_contacts ADD CONSTRAINT owner_contacts_scope_key
    UNIQUE (owner_id, channel, address, plate_key);

CREATE TABLE contact_confirmations (
    handle            TEXT PRIMARY KEY,
    resolution_number TEXT NOT NULL REFERENCES resolutions (number),
    owner_id          TEXT NOT NULL,
    plate_key         TEXT NOT NULL CHECK (plate_key <> ''),
    channel           TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    address           TEXT NOT NULL,
    code_sha256       TEXT NOT NULL,
    requested_at      TIMESTAMPTZ NOT NULL,
    requested_by      TEXT NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    tries             INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    confirmed_at      TIMESTAMPTZ
);
-- Lapsed requests are deleted as new ones come (they hold an address).
CREATE INDEX contact_confirmations_expiry ON contact_confirmations (expires_at);
