//! The recognition queue on SQLite. Every write is one `BEGIN IMMEDIATE` transaction
//! on the writer connection: SQLite runs one writer at a time (across processes too),
//! so a claim's single `UPDATE ... RETURNING` can never race another claim. Leases are
//! instants in unix milliseconds of this host's clock, the only clock an embedded
//! database has.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use kozomol_core::{CaseId, CaseState};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use tracing::debug;

use crate::audit::now_millis;
use crate::batch::ChainedAudit;
use crate::error::db_error;
use crate::recognition::{self, CameraReadColumns, ClaimedRow, OutcomeColumns, RecordRow};
use crate::sqlite::{frame_from_row, ms, offset_i64, rows_per_statement, SqliteStore};
use crate::{
    decode, CompleteResult, EvidenceRef, FailResult, FrameLocation, RecognitionJob,
    RecognitionOutcome, RecognitionQueue, RecognitionRecord, StoreError,
};

/// The camera's read, selected from a `cases` row: the text ingest stored, the rest
/// from the signed event. A macro because `query()` takes only `&'static str`.
macro_rules! camera_read {
    () => {
        "plate AS camera_plate, \
         json_extract(event, '$.plate_read.confidence_milli') AS camera_confidence_milli, \
         json_extract(event, '$.plate_read.country') AS camera_country"
    };
}

fn camera_read_from_row(row: &SqliteRow) -> Result<CameraReadColumns, StoreError> {
    Ok(CameraReadColumns {
        text: row.try_get("camera_plate")?,
        confidence_milli: row.try_get("camera_confidence_milli")?,
        country: row.try_get("camera_country")?,
    })
}

pub(crate) async fn insert_audit(
    tx: &mut SqliteConnection,
    audit: &ChainedAudit<'_>,
) -> Result<(), StoreError> {
    insert_audits(tx, std::slice::from_ref(audit)).await
}

/// Audit rows, as many to a statement as the binds allow.
pub(crate) async fn insert_audits(
    tx: &mut SqliteConnection,
    audits: &[ChainedAudit<'_>],
) -> Result<(), StoreError> {
    for chunk in audits.chunks(rows_per_statement(10)) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO audit_log (batch_id, case_id, at, actor, action, from_state, \
             to_state, detail, prev_hash, hash) ",
        );
        qb.push_values(chunk, |mut row, audit| {
            let r = &audit.row;
            row.push_bind(r.batch_id.to_string())
                .push_bind(r.case_id.map(|id| id.0))
                .push_bind(ms(r.at))
                .push_bind(r.actor)
                .push_bind(r.action)
                .push_bind(r.from_state.map(CaseState::as_str))
                .push_bind(r.to_state.map(CaseState::as_str))
                .push_bind(r.detail)
                .push_bind(&audit.prev_hash[..])
                .push_bind(&audit.hash[..]);
        });
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

pub(crate) async fn insert_evidence(
    tx: &mut SqliteConnection,
    crop: &EvidenceRef,
) -> Result<(), StoreError> {
    insert_blobs(tx, &[(&crop.sha256, &crop.location)]).await
}

/// Where stored bytes lie, by their hash, as many to a statement as the binds allow.
/// The same bytes may be stored already: the first location wins, and a second copy
/// is recorded so that destruction overwrites it too.
pub(crate) async fn insert_blobs(
    tx: &mut SqliteConnection,
    stored: &[(&[u8; 32], &FrameLocation)],
) -> Result<(), StoreError> {
    let blobs = crate::destruction::first_locations(stored);
    for chunk in blobs.chunks(rows_per_statement(4)) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO evidence_blobs (sha256, segment, byte_offset, byte_len) ",
        );
        push_locations(&mut qb, chunk);
        qb.push(crate::destruction::ON_STORED_BLOB);
        qb.build().execute(&mut *tx).await?;
    }
    record_copies(tx, stored).await
}

/// Records which of `stored` are second copies of blobs.
async fn record_copies(
    tx: &mut SqliteConnection,
    stored: &[(&[u8; 32], &FrameLocation)],
) -> Result<(), StoreError> {
    let sql = crate::destruction::record_copies("s");
    execute_on_locations(tx, &sql, &crate::destruction::stored_again(stored)).await
}

/// Records which of the bytes stored that no row keeps (`unkept`: the frames of events
/// that made no case, the crop or PDF of work whose lease was lost) are copies of
/// blobs, and queues at once those of blobs erased already and those no blob holds.
/// Run after the batch's blobs: a blob a created case brings back is no longer erased,
/// and one it stores holds its bytes.
pub(crate) async fn record_unkept(
    tx: &mut SqliteConnection,
    unkept: &[(&[u8; 32], &FrameLocation)],
) -> Result<(), StoreError> {
    let unkept = crate::destruction::stored_again(unkept);
    // Milliseconds, as every time is kept here.
    let now = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";
    for sql in crate::destruction::unkept_statements("s", now) {
        execute_on_locations(tx, &sql, &unkept).await?;
    }
    Ok(())
}

/// Runs `sql` (reading the relation `s`) on `rows`, as many to a statement as the
/// binds allow.
async fn execute_on_locations(
    tx: &mut SqliteConnection,
    sql: &str,
    rows: &[(&[u8; 32], &FrameLocation)],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(rows_per_statement(4)) {
        let mut qb =
            QueryBuilder::<Sqlite>::new("WITH s (sha256, segment, byte_offset, byte_len) AS (");
        push_locations(&mut qb, chunk);
        qb.push(") ");
        qb.push(sql);
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// `VALUES` of blobs' hashes and locations.
fn push_locations(qb: &mut QueryBuilder<Sqlite>, blobs: &[(&[u8; 32], &FrameLocation)]) {
    qb.push_values(blobs, |mut row, (sha, location)| {
        row.push_bind(&sha[..])
            .push_bind(location.segment.as_str())
            .push_bind(offset_i64(location.offset))
            .push_bind(i64::from(location.len));
    });
}

fn conflict(case_id: CaseId) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| db_error(err, || format!("recognition of case {case_id}"))
}

#[async_trait]
impl RecognitionQueue for SqliteStore {
    async fn claim_recognition(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<RecognitionJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = Utc::now().timestamp_millis();
        let until = now.saturating_add(recognition::delay_millis(lease));
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let claimed = sqlx::query(concat!(
            "UPDATE cases SET recognition_worker = ?, recognition_lease_until = ?, \
             recognition_attempts = recognition_attempts + 1 \
             WHERE id IN (SELECT id FROM cases WHERE state = 'received' \
             AND (recognition_lease_until IS NULL OR recognition_lease_until <= ?) \
             ORDER BY id LIMIT ?) \
             RETURNING id, camera_id, recognition_attempts, recognition_lease_until, \
             recognition_error, ",
            camera_read!()
        ))
        .bind(worker)
        .bind(until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok(ClaimedRow {
                id: row.try_get("id")?,
                camera_id: row.try_get("camera_id")?,
                camera_read: camera_read_from_row(row)?,
                attempts: row.try_get("recognition_attempts")?,
                leased_until: decode::millis(row.try_get("recognition_lease_until")?)?,
                last_error: row.try_get("recognition_error")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

        let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
        let mut frames = Vec::with_capacity(ids.len() * 2);
        for chunk in ids.chunks(rows_per_statement(1)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT f.case_id, f.idx, f.role, f.sha256, b.segment, b.byte_offset, \
                 b.byte_len FROM case_frames f JOIN evidence_blobs b ON b.sha256 = f.sha256 \
                 WHERE f.case_id IN (",
            );
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            qb.push(") ORDER BY f.case_id, f.idx");
            for row in qb.build().fetch_all(&mut *tx).await? {
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // The lease is checked by the update itself; without a row it was lost, and
        // only the crop stored for it is recorded, to be overwritten.
        let Some(row) = sqlx::query(
            "UPDATE cases SET state = ?, recognition_worker = NULL, \
             recognition_lease_until = NULL \
             WHERE id = ? AND state = 'received' AND recognition_worker = ? \
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
        let attempts: i64 = row.try_get("recognition_attempts")?;
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
             SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ",
            camera_read!(),
            " FROM cases WHERE id = ?"
        ))
        .bind(outcome.decision.state().as_str())
        .bind(worker)
        .bind(attempts)
        .bind(ms(now))
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
        let retry_at = ms(now).saturating_add(recognition::delay_millis(retry_after));
        let max_attempts = max_attempts.map(i64::from);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // Every SET expression sees the row as it was, so both CASEs test the same
        // attempt count. The error stays on the case either way.
        // No limit (an outage): the comparisons are NULL, never true, and the claim's
        // count is given back.
        let Some(row) = sqlx::query(
            "UPDATE cases SET recognition_error = ?, recognition_worker = NULL, \
             recognition_lease_until = \
             CASE WHEN recognition_attempts >= ? THEN NULL ELSE ? END, \
             state = CASE WHEN recognition_attempts >= ? THEN 'needs_review' ELSE state END, \
             recognition_attempts = recognition_attempts - (? IS NULL) \
             WHERE id = ? AND state = 'received' AND recognition_worker = ? \
             RETURNING state, recognition_attempts",
        )
        .bind(error)
        .bind(max_attempts)
        .bind(retry_at)
        .bind(max_attempts)
        .bind(max_attempts)
        .bind(case_id.0)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(FailResult::LeaseLost);
        };
        let attempts_raw: i64 = row.try_get("recognition_attempts")?;
        let attempts = decode::u32_of(attempts_raw, "recognition attempts")?;
        if decode::state(row.try_get("state")?)? == CaseState::Received {
            tx.commit().await?;
            return Ok(FailResult::WillRetry { attempts });
        }
        sqlx::query(concat!(
            "INSERT INTO recognitions (case_id, decision, worker, attempts, decided_at, \
             char_confidences, candidates, error, camera_plate, camera_confidence_milli, \
             camera_country) SELECT id, 'needs_review', ?, ?, ?, '[]', '[]', ?, ",
            camera_read!(),
            " FROM cases WHERE id = ?"
        ))
        .bind(worker)
        .bind(attempts_raw)
        .bind(ms(now))
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
             r.country, r.confidence_milli, r.char_confidences, r.candidates, r.box_frame_idx, \
             r.box_x, r.box_y, r.box_w, r.box_h, r.crop_sha256, b.segment, b.byte_offset, \
             b.byte_len, r.model, r.camera_plate, r.camera_confidence_milli, r.camera_country, \
             r.agreement, r.error \
             FROM recognitions r LEFT JOIN evidence_blobs b ON b.sha256 = r.crop_sha256 \
             WHERE r.case_id = ?",
        )
        .bind(case_id.0)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        RecordRow {
            case_id: row.try_get("case_id")?,
            decision: row.try_get("decision")?,
            worker: row.try_get("worker")?,
            attempts: row.try_get("attempts")?,
            decided_at: decode::millis(row.try_get("decided_at")?)?,
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
