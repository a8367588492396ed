-- kozomol schema v24: a road accident's file is destroyed at the end of its archive
-- period, as a case's is (v22).
--
-- When its photos and scheme were erased; NULL while its file is kept. An accident
-- whose file is kept still holds its blobs: a case's destruction leaves them.
ALTER TABLE accidents ADD COLUMN evidence_destroyed_at INTEGER;
