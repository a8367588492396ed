-- kozomol schema v27: contacts a citizen leaves through the portal are confirmed first
-- and serve the one vehicle whose certificate was shown.
--
-- A contact proves deliveries (an SMS gateway's report starts the discount and appeal
-- clocks), so it is stored only once the code sent to it came back: until then it sits
-- in contact_confirmations (the code's SHA-256 with the request's handle, never the
-- code). A contact taken from the portal names the plate key of the vehicle the
-- citizen proved (`plate_key`), and only that vehicle's resolutions go to it; '' is a
-- contact a desk officer took after seeing the owner's papers: every resolution of the
-- owner. SQLite cannot change a table's UNIQUE constraint: the table is rebuilt.
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

CREATE TABLE owner_contacts_scoped (
    id        INTEGER PRIMARY KEY NOT NULL,
    owner_id  TEXT NOT NULL,
    channel   TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    address   TEXT NOT NULL,
    added_at  INTEGER NOT NULL,
    added_by  TEXT NOT NULL,
    plate_key TEXT NOT NULL DEFAULT '',
    UNIQUE (owner_id, channel, address, plate_key)
) STRICT;
INSERT INTO owner_contacts_scoped (id, owner_id, channel, address, added_at, added_by)
    SELECT id, owner_id, channel, address, added_at, added_by FROM owner_contacts;
DROP TABLE owner_contacts;
ALTER TABLE owner_contacts_scoped RENAME TO owner_contacts;

CREATE TABLE contact_confirmations (
    handle            TEXT PRIMARY KEY NOT NULL,
    resolution_number TEXT NOT NULL REFERENCES resolutions (number),
    owner_id          TEXT NOT NULL,
    plate_key         TEXT NOT NULL CHECK (plate_key <> ''),
    channel           TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    address           TEXT NOT NULL,
    code_sha256       TEXT NOT NULL,
    requested_at      INTEGER NOT NULL,
    requested_by      TEXT NOT NULL,
    expires_at        INTEGER NOT NULL,
    tries             INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    confirmed_at      INTEGER
) STRICT;
-- Lapsed requests are deleted as new ones come (they hold an address).
CREATE INDEX contact_confirmations_expiry ON contact_confirmations (expires_at);
