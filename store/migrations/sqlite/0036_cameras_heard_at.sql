-- kozomol schema v36 for SQLite: when the server last heard a camera say it is online.
--
-- status_at is the camera's own time of its newest status, which may run ahead or
-- behind; whether a camera is still there is judged by this server's clock: the
-- arrival of its last online status (or its last event, last_seen).
ALTER TABLE cameras ADD COLUMN online_heard_at INTEGER;
