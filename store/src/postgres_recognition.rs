//! The recognition queue on PostgreSQL. A claim is one statement: the inner SELECT
//! locks the oldest free cases `FOR UPDATE SKIP LOCKED`, so concurrent claimers pass
//! over each other's rows instead of waiting or taking them twice, and the UPDATE
//! leases what it locked. The inner SELECT sits in `= ANY (ARRAY (...))`, not `IN
//! (...)`: once PostgreSQL switches a prepared claim to a generic plan it assumes
//! `LIMIT $3` means a tenth of the queue and plans `IN` as a hash join over a scan of
//! every case (0.8 s with 10^6 cases, measured), while an array is computed first and
//! then looked up by primary key whatever the plan (about 1 ms). Completing or failing updates the case row under the same
//! row lock, so it either finishes before a claim looks at the case or sees the
//! claim's new lease and reports the lease lost. Leases are measured by the server's
//! clock (`now()`), the one clock all recognizer hosts share.

use std::time::Duration;

use async_trait::async_trait;
use kozomol_core::{CaseId, CaseState};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use tracing::debug;

use crate::audit::now_millis;
use crate::batch::ChainedAudit;
use crate::error::db_error;
use crate::postgres::{frame_from_row, offset_i64, PgStore};
use crate::recognition::{self, CameraReadColumns, ClaimedRow, OutcomeColumns, RecordRow};
use crate::{
    decode, CompleteResult, EvidenceRef, FailResult, FrameLocation, RecognitionJob,
    RecognitionOutcome, RecognitionQueue, RecognitionRecord, StoreError,
};

/// The camera's read, selected from a `cases` row: the text ingest stored, the rest
/// from the signed event. A macro because `query()` takes only `&'static str`.
macro_rules! camera_read {
    () => {
        "plate AS camera_plate, \
         (event #>> '{plate_read,confidence_milli}')::bigint AS camera_confidence_milli, \
         event #>> '{plate_read,country}' AS camera_country"
    };
}

fn camera_read_from_row(row: &PgRow) -> Result<CameraReadColumns, StoreError> {
    Ok(CameraReadColumns {
        text: row.try_get("camera_plate")?,
        confidence_milli: row.try_get("camera_confidence_milli")?,
        country: row.try_get("camera_country")?,
    })
}

pub(crate) async fn insert_audit(
    tx: &mut PgConnection,
    audit: &ChainedAudit<'_>,
) -> Result<(), StoreError> {
    let r = &audit.row;
    sqlx::query(
        "INSERT INTO audit_log (batch_id, case_id, at, actor, action, from_state, to_state, \
         detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(r.batch_id)
    .bind(r.case_id.map(|id| id.0))
    .bind(r.at)
    .bind(r.actor)
    .bind(r.action)
    .bind(r.from_state.map(CaseState::as_str))
    .bind(r.to_state.map(CaseState::as_str))
    .bind(r.detail)
    .bind(&audit.prev_hash[..])
    .bind(&audit.hash[..])
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Where stored bytes lie, by their hash. The same bytes may be stored already: the
/// first location wins, and a second copy is recorded so that destruction overwrites
/// it too. Rows go in hash order: the archive pass locks blobs in that order
/// (`destruction::lock_blobs`), so an insert and a pass never each hold a blob the
/// other waits for.
pub(crate) async fn insert_blobs(
    tx: &mut PgConnection,
    stored: &[(&[u8; 32], &FrameLocation)],
) -> Result<(), StoreError> {
    if stored.is_empty() {
        return Ok(());
    }
    let blobs = crate::destruction::first_locations(stored);
    let insert = format!(
        "INSERT INTO evidence_blobs (sha256, segment, byte_offset, byte_len) \
         SELECT s.sha256, s.segment, s.byte_offset, s.byte_len FROM {STORED}{}",
        crate::destruction::ON_STORED_BLOB
    );
    execute_on_locations(tx, &insert, &blobs).await?;
    record_copies(tx, stored).await
}

/// The locations bound by [`execute_on_locations`], as a relation `s`.
const STORED: &str = "UNNEST($1::bytea[], $2::text[], $3::bigint[], $4::bigint[]) \
                      AS s (sha256, segment, byte_offset, byte_len)";

/// Records which of `stored` are second copies of blobs.
async fn record_copies(
    tx: &mut PgConnection,
    stored: &[(&[u8; 32], &FrameLocation)],
) -> Result<(), StoreError> {
    let stored = crate::destruction::stored_again(stored);
    if !stored.is_empty() {
        execute_on_locations(tx, &crate::destruction::record_copies(STORED), &stored).await?;
    }
    Ok(())
}

/// Records which of the bytes stored that no row keeps (`unkept`: the frames of events
/// that made no case, the crop or PDF of work whose lease was lost) are copies of
/// blobs, and queues at once those of blobs erased already and those no blob holds.
/// Run after the batch's blobs: a blob a created case brings back is no longer erased,
/// and one it stores holds its bytes.
pub(crate) async fn record_unkept(
    tx: &mut PgConnection,
    unkept: &[(&[u8; 32], &FrameLocation)],
) -> Result<(), StoreError> {
    let unkept = crate::destruction::stored_again(unkept);
    lock_blob_rows(tx, &[&unkept]).await?;
    record_unkept_locked(tx, &unkept).await
}

/// [`record_unkept`] for a caller that has locked the blob rows of `unkept` (locations
/// where bytes were written: [`crate::destruction::stored_again`]) already.
pub(crate) async fn record_unkept_locked(
    tx: &mut PgConnection,
    unkept: &[(&[u8; 32], &FrameLocation)],
) -> Result<(), StoreError> {
    if !unkept.is_empty() {
        for sql in crate::destruction::unkept_statements(STORED, "now()") {
            execute_on_locations(tx, &sql, unkept).await?;
        }
    }
    Ok(())
}

/// Locks the blob rows of the hashes in `stored`, in hash order as the archive pass
/// locks them ([`crate::destruction::lock_blobs`]), before this transaction reads
/// whether they are kept: a blob cannot then be erased between that reading and the
/// copies recorded of it, where the pass's queueing would miss them. The order holds
/// for the rows that exist when it runs: a caller that also inserts blobs locks them
/// all in one go, before its first insert.
pub(crate) async fn lock_blob_rows(
    tx: &mut PgConnection,
    stored: &[&[(&[u8; 32], &FrameLocation)]],
) -> Result<(), StoreError> {
    let mut hashes: Vec<&[u8]> = stored
        .iter()
        .flat_map(|rows| rows.iter().map(|(sha, _)| &sha[..]))
        .collect();
    if hashes.is_empty() {
        return Ok(());
    }
    hashes.sort_unstable();
    hashes.dedup();
    sqlx::query(
        "SELECT sha256 FROM evidence_blobs WHERE sha256 = ANY($1) ORDER BY sha256 FOR UPDATE",
    )
    .bind(hashes)
    .fetch_all(&mut *tx)
    .await?;
    Ok(())
}

/// Runs `sql` with the hashes and locations of `rows` bound as arrays ([`STORED`]).
async fn execute_on_locations(
    tx: &mut PgConnection,
    sql: &str,
    rows: &[(&[u8; 32], &FrameLocation)],
) -> Result<(), StoreError> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(rows.iter().map(|(sha, _)| &sha[..]).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|(_, l)| l.segment.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|(_, l)| offset_i64(l.offset))
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|(_, l)| i64::from(l.len))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// One blob's location (see [`insert_blobs`]).
pub(crate) async fn insert_evidence(
    tx: &mut PgConnection,
    blob: &EvidenceRef,
) -> Result<(), StoreError> {
    insert_blobs(tx, &[(&blob.sha256, &blob.location)]).await
}

fn conflict(case_id: CaseId) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| db_error(err, || format!("recognition of case {case_id}"))
}

#[async_trait]
impl RecognitionQueue for PgStore {
    async fn claim_recognition(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<RecognitionJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(concat!(
            "UPDATE cases SET recognition_worker = $1, \
             recognition_lease_until = now() + $2::double precision * interval '1 millisecond', \
             recognition_attempts = recognition_attempts + 1 \
             WHERE id = ANY (ARRAY (SELECT id FROM cases WHERE state = 'received' \
             AND (recognition_lease_until IS NULL OR recognition_lease_until <= now()) \
             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)) \
             RETURNING id, camera_id, recognition_attempts, recognition_lease_until, \
             recognition_error, ",
            camera_read!()
        ))
        .bind(worker)
        // Exact: leases are capped at a year, some 3.2e10 milliseconds.
        .bind(recognition::delay_millis(lease) as f64)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok(ClaimedRow {
                id: row.try_get("id")?,
                camera_id: row.try_get("camera_id")?,
                camera_read: camera_read_from_row(row)?,
                attempts: i64::from(row.try_get::<i32, _>("recognition_attempts")?),
                leased_until: row.try_get("recognition_lease_until")?,
                last_error: row.try_get("recognition_error")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

        let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
        let mut frames = Vec::with_capacity(ids.len() * 2);
        if !ids.is_empty() {
            for row in sqlx::query(
                "SELECT f.case_id, f.idx, f.role, f.sha256, b.segment, b.byte_offset, \
                 b.byte_len FROM case_frames f JOIN evidence_blobs b ON b.sha256 = f.sha256 \
                 WHERE f.case_id = ANY($1) ORDER BY f.case_id, f.idx",
            )
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            {
                frames.push((row.try_get::<i64, _>("case_id")?, frame_from_row(&row)?));
            }
        }
        tx.commit().await?;
        if !claimed.is_empty() {
            debug!(worker, claimed = claimed.len(), "recognition jobs claimed");
        }
        recognition::jobs(claimed, frames)
    }

    async fn complete_recognition(
        &self,
        worker: &str,
        outcome: &RecognitionOutcome,
    ) -> Result<CompleteResult, StoreError> {
        let case_id = outcome.case_id;
        let columns = OutcomeColumns::new(outcome);
        let actor = recognition::actor(worker);
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        // The lease is checked by the update itself; without a row it was lost, and
        // only the crop stored for it is recorded, to be overwritten.
        let Some(row) = sqlx::query(
            "UPDATE cases SET state = $1, recognition_worker = NULL, \
             recognition_lease_until = NULL \
             WHERE id = $2 AND state = 'received' AND recognition_worker = $3 \
             RETURNING recognition_attempts",
        )
        .bind(outcome.decision.state().as_str())
        .bind(case_id.0)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await?
        else {
            if let Some(crop) = &outcome.crop {
                record_unkept(&mut tx, &[(&crop.sha256, &crop.location)]).await?;
            }
            tx.commit().await?;
            return Ok(CompleteResult::LeaseLost);
        };
        let attempts: i32 = row.try_get("recognition_attempts")?;
        if let Some(crop) = &outcome.crop {
            insert_evidence(&mut tx, crop).await?;
        }
        let plate = outcome.plate.as_ref();
        let [box_frame, box_x, box_y, box_w, box_h] = columns.plate_box;
        sqlx::query(concat!(
            "INSERT INTO recognitions (case_id, decision, worker, attempts, decided_at, plate, \
             country, confidence_milli, char_confidences, candidates, box_frame_idx, box_x, \
             box_y, box_w, box_h, crop_sha256, model, agreement, error, camera_plate, \
             camera_confidence_milli, camera_country) \
             SELECT id, $1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13, \
             $14, $15, $16, $17, NULL, ",
            camera_read!(),
            " FROM cases WHERE id = $18"
        ))
        .bind(outcome.decision.state().as_str())
        .bind(worker)
        .bind(i64::from(attempts))
        .bind(now)
        .bind(plate.map(|p| p.text.as_str()))
        .bind(plate.and_then(|p| p.country.as_deref()))
        .bind(columns.confidence_milli)
        .bind(&columns.char_confidences)
        .bind(&columns.candidates)
        .bind(box_frame)
        .bind(box_x)
        .bind(box_y)
        .bind(box_w)
        .bind(box_h)
        .bind(outcome.crop.as_ref().map(|c| &c.sha256[..]))
        .bind(outcome.model.as_str())
        .bind(outcome.agreement)
        .bind(case_id.0)
        .execute(&mut *tx)
        .await
        .map_err(conflict(case_id))?;
        let audit =
            recognition::completed_audit(case_id, &actor, outcome.decision, &columns.detail, now);
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(CompleteResult::Completed)
    }

    async fn fail_recognition(
        &self,
        worker: &str,
        case_id: CaseId,
        error: &str,
        retry_after: Duration,
        max_attempts: Option<u32>,
    ) -> Result<FailResult, StoreError> {
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        // Every SET expression sees the row as it was, so both CASEs test the same
        // attempt count. The error stays on the case either way.
        // No limit (an outage): the comparisons are NULL, never true, and the claim's
        // count is given back.
        let Some(row) = sqlx::query(
            "UPDATE cases SET recognition_error = $1, recognition_worker = NULL, \
             recognition_lease_until = CASE WHEN recognition_attempts >= $2 THEN NULL \
             ELSE now() + $3::double precision * interval '1 millisecond' END, \
             state = CASE WHEN recognition_attempts >= $2 THEN 'needs_review' ELSE state END, \
             recognition_attempts = recognition_attempts \
               - CASE WHEN $2::BIGINT IS NULL THEN 1 ELSE 0 END \
             WHERE id = $4 AND state = 'received' AND recognition_worker = $5 \
             RETURNING state, recognition_attempts",
        )
        .bind(error)
        .bind(max_attempts.map(i64::from))
        .bind(recognition::delay_millis(retry_after) as f64)
        .bind(case_id.0)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(FailResult::LeaseLost);
        };
        let attempts_raw: i32 = row.try_get("recognition_attempts")?;
        let attempts = decode::u32_of(i64::from(attempts_raw), "recognition attempts")?;
        if decode::state(row.try_get("state")?)? == CaseState::Received {
            tx.commit().await?;
            return Ok(FailResult::WillRetry { attempts });
        }
        sqlx::query(concat!(
            "INSERT INTO recognitions (case_id, decision, worker, attempts, decided_at, \
             char_confidences, candidates, error, camera_plate, camera_confidence_milli, \
             camera_country) SELECT id, 'needs_review', $1, $2, $3, '[]', '[]', $4, ",
            camera_read!(),
            " FROM cases WHERE id = $5"
        ))
        .bind(worker)
        .bind(i64::from(attempts_raw))
        .bind(now)
        .bind(error)
        .bind(case_id.0)
        .execute(&mut *tx)
        .await
        .map_err(conflict(case_id))?;
        let actor = recognition::actor(worker);
        insert_audit(
            &mut tx,
            &recognition::failed_audit(case_id, &actor, error, now),
        )
        .await?;
        tx.commit().await?;
        debug!(case_id = %case_id, worker, attempts, "recognition gave up, case sent to review");
        Ok(FailResult::SentToReview { attempts })
    }

    async fn recognition(&self, case_id: CaseId) -> Result<Option<RecognitionRecord>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT r.case_id, r.decision, r.worker, r.attempts, r.decided_at, r.plate, \
             r.country, r.confidence_milli, r.char_confidences::text AS char_confidences, \
             r.candidates::text AS candidates, r.box_frame_idx, r.box_x, r.box_y, r.box_w, \
             r.box_h, r.crop_sha256, b.segment, b.byte_offset, b.byte_len, r.model, \
             r.camera_plate, r.camera_confidence_milli, r.camera_country, r.agreement, r.error \
             FROM recognitions r LEFT JOIN evidence_blobs b ON b.sha256 = r.crop_sha256 \
             WHERE r.case_id = $1",
        )
        .bind(case_id.0)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        RecordRow {
            case_id: row.try_get("case_id")?,
            decision: row.try_get("decision")?,
            worker: row.try_get("worker")?,
            attempts: row.try_get("attempts")?,
            decided_at: row.try_get("decided_at")?,
            plate: row.try_get("plate")?,
            country: row.try_get("country")?,
            confidence_milli: row.try_get("confidence_milli")?,
            char_confidences: row.try_get("char_confidences")?,
            candidates: row.try_get("candidates")?,
            plate_box: [
                row.try_get("box_frame_idx")?,
                row.try_get("box_x")?,
                row.try_get("box_y")?,
                row.try_get("box_w")?,
                row.try_get("box_h")?,
            ],
            crop_sha256: row.try_get("crop_sha256")?,
            crop_location: (
                row.try_get("segment")?,
                row.try_get("byte_offset")?,
                row.try_get("byte_len")?,
            ),
            model: row.try_get("model")?,
            camera_read: camera_read_from_row(&row)?,
            agreement: row.try_get("agreement")?,
            error: row.try_get("error")?,
        }
        .decode()
        .map(Some)
    }
}
