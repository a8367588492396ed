-- kozomol schema v35 for SQLite: a subscription's id is never given again.
--
-- A notice is addressed `subscription:{id}`. With a plain INTEGER PRIMARY KEY, ending
-- the newest subscription and taking a new one gave the new one the same id, and the
-- notices still queued for the ended one (another owner's resolution number, amount and
-- payment code) went to the new subscriber. AUTOINCREMENT never reuses an id; the
-- sequence starts above every id a notice was ever addressed to.
CREATE TABLE violation_subscriptions_v35 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    client        TEXT NOT NULL,
    pin           TEXT NOT NULL,
    plate         TEXT NOT NULL,
    plate_key     TEXT NOT NULL,
    unique_number TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    -- The X-Road message that subscribed.
    xroad_id      TEXT NOT NULL,
    UNIQUE (client, pin, plate_key)
) STRICT;
INSERT INTO violation_subscriptions_v35
    (id, client, pin, plate, plate_key, unique_number, created_at, xroad_id)
SELECT id, client, pin, plate, plate_key, unique_number, created_at, xroad_id
FROM violation_subscriptions;
DROP TABLE violation_subscriptions;
ALTER TABLE violation_subscriptions_v35 RENAME TO violation_subscriptions;
CREATE INDEX violation_subscriptions_owner ON violation_subscriptions (pin, plate_key);
-- The rename carried the sequence's row; set it from the ids ever used.
DELETE FROM sqlite_sequence WHERE name = 'violation_subscriptions';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'violation_subscriptions', seq FROM (
    SELECT max(seq) AS seq FROM (
        SELECT max(id) AS seq FROM violation_subscriptions
        UNION ALL
        SELECT max(CAST(substr(address, 14) AS INTEGER)) FROM deliveries
        WHERE channel = 'portal' AND address LIKE 'subscription:%'
    )
) WHERE seq IS NOT NULL;
