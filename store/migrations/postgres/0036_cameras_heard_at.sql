-- kozomol schema v36 for PostgreSQL: when the server last heard a camera say it is
-- online (see the SQLite twin).
ALTER TABLE cameras ADD COLUMN online_heard_at TIMESTAMPTZ;
