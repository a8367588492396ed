//! The stages after review on SQLite: claims under a lease (one writer at a time, so a
//! claim's single `UPDATE ... RETURNING` never races another), the owner lookup and
//! the issued resolution, each stored with its state move and audit row in one
//! `BEGIN IMMEDIATE` transaction.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use kozomol_core::{CaseId, CaseState};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::audit::now_millis;
use crate::recognition::delay_millis;
use crate::sqlite::{
    case_from_row, frame_from_row, location_from_row, ms, rows_per_statement, SqliteStore,
};
use crate::sqlite_recognition::{insert_audit, insert_audits, insert_blobs};
use crate::sqlite_review::review_from_row;
use crate::stages::{self, lookup_select, LookupColumns, ResolutionColumns};
use crate::{
    decode, CaseFrame, CompleteResult, EvidenceRef, FineStages, IssuingRead, NewResolution,
    OwnerLookupRecord, ResolutionRecord, ReviewRecord, StoreError,
};

/// The resolution's columns with its PDF's location. A macro because `query()` takes
/// only `&'static str`.
macro_rules! resolution_select {
    ($where:literal) => {
        concat!(
            "SELECT r.number, r.case_id, r.payment_code, r.jurisdiction, \
     r.article, r.units, r.amount_minor, r.discounted_minor, r.currency, r.issued_at, \
     r.pdf_sha256, b.segment, b.byte_offset, b.byte_len, r.signature, r.signature_key_id, \
     r.signer, r.delivered_at, r.delivered_via, r.repeat_of \
     FROM resolutions r JOIN evidence_blobs b ON b.sha256 = r.pdf_sha256 ",
            $where
        )
    };
}

pub(crate) fn resolution_from_row(row: &SqliteRow) -> Result<ResolutionRecord, StoreError> {
    ResolutionColumns {
        number: row.try_get("number")?,
        case_id: row.try_get("case_id")?,
        payment_code: row.try_get("payment_code")?,
        jurisdiction: row.try_get("jurisdiction")?,
        article: row.try_get("article")?,
        units: row.try_get("units")?,
        amount_minor: row.try_get("amount_minor")?,
        discounted_minor: row.try_get("discounted_minor")?,
        currency: row.try_get("currency")?,
        issued_at: decode::millis(row.try_get("issued_at")?)?,
        pdf_sha256: row.try_get("pdf_sha256")?,
        pdf_location: location_from_row(row)?,
        signature: row.try_get("signature")?,
        signature_key_id: row.try_get("signature_key_id")?,
        signer: row.try_get("signer")?,
        delivered_at: decode::opt_millis(row.try_get("delivered_at")?)?,
        delivered_via: row.try_get("delivered_via")?,
        repeat_of: row.try_get("repeat_of")?,
    }
    .record()
}

#[async_trait]
impl FineStages for SqliteStore {
    async fn claim_stage(
        &self,
        state: CaseState,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<CaseId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = Utc::now().timestamp_millis();
        let until = now.saturating_add(delay_millis(lease));
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut ids: Vec<CaseId> = sqlx::query_scalar(
            "UPDATE cases SET stage_worker = ?, stage_lease_until = ?, \
             stage_attempts = stage_attempts + 1 \
             WHERE id IN (SELECT id FROM cases WHERE state = ? \
             AND (stage_lease_until IS NULL OR stage_lease_until <= ?) ORDER BY id LIMIT ?) \
             RETURNING id",
        )
        .bind(worker)
        .bind(until)
        .bind(state.as_str())
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(CaseId)
        .collect();
        tx.commit().await?;
        ids.sort();
        Ok(ids)
    }

    async fn record_owner_lookup(
        &self,
        worker: &str,
        lookup: &OwnerLookupRecord,
    ) -> Result<CompleteResult, StoreError> {
        stages::check_lookup(lookup)?;
        let now = now_millis();
        let actor = stages::actor(worker);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let moved = sqlx::query(
            "UPDATE cases SET state = ?, stage_worker = NULL, stage_lease_until = NULL, \
             stage_attempts = 0, stage_error = NULL \
             WHERE id = ? AND state = 'approved' AND stage_worker = ?",
        )
        .bind(stages::lookup_state(lookup).as_str())
        .bind(lookup.case_id.0)
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(CompleteResult::LeaseLost);
        }
        let owner = lookup.owner.as_ref();
        sqlx::query(
            "INSERT INTO owner_lookups (case_id, outcome, owner_kind, owner_id, owner_name, \
             owner_address, vehicle, registry_owner, reason, exchange_id, looked_up_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (case_id) DO UPDATE SET outcome = excluded.outcome, \
             owner_kind = excluded.owner_kind, owner_id = excluded.owner_id, \
             owner_name = excluded.owner_name, owner_address = excluded.owner_address, \
             vehicle = excluded.vehicle, registry_owner = excluded.registry_owner, \
             reason = excluded.reason, \
             exchange_id = excluded.exchange_id, looked_up_at = excluded.looked_up_at",
        )
        .bind(lookup.case_id.0)
        .bind(lookup.outcome.as_str())
        .bind(owner.map(|o| o.kind.as_str()))
        .bind(owner.map(|o| o.id.as_str()))
        .bind(owner.map(|o| o.name.as_str()))
        .bind(owner.and_then(|o| o.address.as_deref()))
        .bind(lookup.vehicle.to_string())
        .bind((!lookup.registry_owner.is_null()).then(|| lookup.registry_owner.to_string()))
        .bind(lookup.reason.as_deref())
        .bind(lookup.exchange_id.as_deref())
        .bind(ms(lookup.looked_up_at))
        .execute(&mut *tx)
        .await?;
        let detail = stages::lookup_detail(lookup);
        insert_audit(&mut tx, &stages::lookup_audit(lookup, &actor, &detail, now)).await?;
        tx.commit().await?;
        Ok(CompleteResult::Completed)
    }

    async fn owner_lookup(&self, case_id: CaseId) -> Result<Option<OwnerLookupRecord>, StoreError> {
        sqlx::query(concat!(lookup_select!(), "WHERE case_id = ?"))
            .bind(case_id.0)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(lookup_from_row)
            .transpose()
    }

    async fn owner_lookups(&self, cases: &[CaseId]) -> Result<Vec<OwnerLookupRecord>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let mut lookups = Vec::with_capacity(cases.len());
        for chunk in cases.chunks(rows_per_statement(1)) {
            let head = concat!(lookup_select!(), "WHERE case_id IN (");
            for row in select_in(&mut conn, head, chunk, ")").await? {
                lookups.push(lookup_from_row(&row)?);
            }
        }
        Ok(lookups)
    }

    async fn issuing_reads(
        &self,
        cases: &[CaseId],
    ) -> Result<Vec<Option<IssuingRead>>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let mut reads: HashMap<CaseId, IssuingRead> = HashMap::with_capacity(cases.len());
        let mut evidence_of: HashMap<CaseId, CaseId> = HashMap::with_capacity(cases.len());
        for chunk in cases.chunks(rows_per_statement(1)) {
            let rows = select_in(
                &mut conn,
                "SELECT id, event_id, camera_id, captured_at, received_at, kind, state, plate, \
                 enforceable, enforceability_note, fingerprint, event, decided_plate, \
                 personal_data_purged_at, evidence_destroyed_at, stage_attempts \
                 FROM cases WHERE id IN (",
                chunk,
                ")",
            )
            .await?;
            let frames = select_in(
                &mut conn,
                "SELECT f.case_id, f.idx, f.role, f.sha256, b.segment, b.byte_offset, \
                 b.byte_len FROM case_frames f JOIN evidence_blobs b ON b.sha256 = f.sha256 \
                 WHERE f.case_id IN (",
                chunk,
                ") ORDER BY f.case_id, f.idx",
            )
            .await?;
            let mut frames_of: HashMap<CaseId, Vec<CaseFrame>> = HashMap::new();
            for row in &frames {
                frames_of
                    .entry(CaseId(row.try_get("case_id")?))
                    .or_default()
                    .push(frame_from_row(row)?);
            }
            for row in &rows {
                let id = CaseId(row.try_get("id")?);
                let case = case_from_row(row, frames_of.remove(&id).unwrap_or_default())?;
                evidence_of.insert(id, id);
                reads.insert(
                    id,
                    IssuingRead {
                        case,
                        attempts: u32::try_from(row.try_get::<i64, _>("stage_attempts")?)
                            .unwrap_or(u32::MAX),
                        decided_plate: row.try_get("decided_plate")?,
                        lookup: None,
                        reissued_from: None,
                        crop: None,
                        reviews: Vec::new(),
                    },
                );
            }
            for row in select_in(
                &mut conn,
                "SELECT case_id, outcome, owner_kind, owner_id, owner_name, owner_address, \
                 vehicle, registry_owner, reason, exchange_id, looked_up_at FROM owner_lookups \
                 WHERE case_id IN (",
                chunk,
                ")",
            )
            .await?
            {
                let lookup = lookup_from_row(&row)?;
                if let Some(read) = reads.get_mut(&lookup.case_id) {
                    read.lookup = Some(lookup);
                }
            }
            for row in select_in(
                &mut conn,
                "SELECT reissued_case_id, case_id FROM nominations WHERE reissued_case_id IN (",
                chunk,
                ")",
            )
            .await?
            {
                let reissued = CaseId(row.try_get("reissued_case_id")?);
                let from = CaseId(row.try_get("case_id")?);
                if let Some(read) = reads.get_mut(&reissued) {
                    read.reissued_from = Some(from);
                    evidence_of.insert(reissued, from);
                }
            }
        }
        // Crops and reviews are the evidence case's: the original of a re-issued one.
        let mut evidence_cases: Vec<CaseId> = evidence_of.values().copied().collect();
        evidence_cases.sort_unstable();
        evidence_cases.dedup();
        let mut crops: HashMap<CaseId, EvidenceRef> = HashMap::new();
        let mut reviews: HashMap<CaseId, Vec<ReviewRecord>> = HashMap::new();
        for chunk in evidence_cases.chunks(rows_per_statement(1)) {
            for row in select_in(
                &mut conn,
                "SELECT r.case_id, r.crop_sha256, b.segment, b.byte_offset, b.byte_len \
                 FROM recognitions r JOIN evidence_blobs b ON b.sha256 = r.crop_sha256 \
                 WHERE r.case_id IN (",
                chunk,
                ")",
            )
            .await?
            {
                let sha: Vec<u8> = row.try_get("crop_sha256")?;
                crops.insert(
                    CaseId(row.try_get("case_id")?),
                    EvidenceRef {
                        sha256: decode::hash32(&sha, "crop hash")?,
                        location: location_from_row(&row)?,
                    },
                );
            }
            for row in select_in(
                &mut conn,
                "SELECT id, case_id, tier, reviewer, decision, reason, plate, note, from_state, \
                 to_state, decided_at FROM reviews WHERE case_id IN (",
                chunk,
                ") ORDER BY id",
            )
            .await?
            {
                let review = review_from_row(&row)?;
                reviews.entry(review.case_id).or_default().push(review);
            }
        }
        for (id, read) in &mut reads {
            let evidence = evidence_of.get(id).copied().unwrap_or(*id);
            read.crop = crops.get(&evidence).cloned();
            read.reviews = reviews.get(&evidence).cloned().unwrap_or_default();
        }
        Ok(cases.iter().map(|id| reads.get(id).cloned()).collect())
    }

    async fn reserve_resolution_numbers(
        &self,
        cases: &[CaseId],
        issuer: &str,
        year: i32,
    ) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // A reservation made for another year (or issuer) was never used: a case that
        // comes back after the new year takes one of the year it is issued in.
        for chunk in cases.chunks(rows_per_statement(1) - 2) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("DELETE FROM resolution_numbers WHERE (issuer <> ");
            qb.push_bind(issuer)
                .push(" OR year <> ")
                .push_bind(year)
                .push(
                    ") AND NOT EXISTS (SELECT 1 FROM resolutions r \
                     WHERE r.case_id = resolution_numbers.case_id) AND case_id IN (",
                );
            let mut ids = qb.separated(", ");
            for id in chunk {
                ids.push_bind(id.0);
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await?;
        }
        let mut numbers = HashMap::with_capacity(cases.len());
        for chunk in cases.chunks(rows_per_statement(1) - 2) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT case_id, sequence FROM resolution_numbers WHERE issuer = ",
            );
            qb.push_bind(issuer)
                .push(" AND year = ")
                .push_bind(year)
                .push(" AND case_id IN (");
            let mut ids = qb.separated(", ");
            for id in chunk {
                ids.push_bind(id.0);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut *tx).await? {
                numbers.insert(
                    CaseId(row.try_get("case_id")?),
                    row.try_get::<i64, _>("sequence")?,
                );
            }
        }
        // The cases without a number take the next ones, in the order given.
        let mut missing: Vec<CaseId> = Vec::new();
        for &case_id in cases {
            if !numbers.contains_key(&case_id) && !missing.contains(&case_id) {
                missing.push(case_id);
            }
        }
        if !missing.is_empty() {
            let count = i64::try_from(missing.len())
                .map_err(|_| StoreError::Corrupt("too many cases to number".into()))?;
            let first: i64 = sqlx::query_scalar(
                "INSERT INTO resolution_counters (issuer, year, next) VALUES (?, ?, 1 + ?) \
                     ON CONFLICT (issuer, year) DO UPDATE SET next = resolution_counters.next + ? \
                     RETURNING next - ?",
            )
            .bind(issuer)
            .bind(year)
            .bind(count)
            .bind(count)
            .bind(count)
            .fetch_one(&mut *tx)
            .await?;
            let reserved: Vec<(CaseId, i64)> = missing
                .iter()
                .zip(first..)
                .map(|(&id, seq)| (id, seq))
                .collect();
            for chunk in reserved.chunks(rows_per_statement(4)) {
                let mut qb = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO resolution_numbers (case_id, issuer, year, sequence) ",
                );
                qb.push_values(chunk, |mut row, (case_id, sequence)| {
                    row.push_bind(case_id.0)
                        .push_bind(issuer)
                        .push_bind(year)
                        .push_bind(*sequence);
                });
                qb.build().execute(&mut *tx).await.map_err(|e| {
                    crate::error::db_error(e, || {
                        format!(
                            "resolution numbers for cases {:?}",
                            chunk.iter().map(|(id, _)| id.0).collect::<Vec<_>>()
                        )
                    })
                })?;
            }
            numbers.extend(reserved);
        }
        tx.commit().await?;
        cases
            .iter()
            .map(|case_id| {
                let sequence = numbers[case_id];
                u64::try_from(sequence)
                    .map_err(|_| StoreError::Corrupt(format!("sequence {sequence}")))
            })
            .collect()
    }

    async fn record_resolutions(
        &self,
        worker: &str,
        resolutions: &[NewResolution],
    ) -> Result<Vec<CompleteResult>, StoreError> {
        for resolution in resolutions {
            stages::check_resolution(resolution)?;
        }
        let now = now_millis();
        let actor = stages::actor(worker);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // The cases still leased to this worker move; the rest were lost to another.
        let mut moved = HashSet::with_capacity(resolutions.len());
        for chunk in resolutions.chunks(rows_per_statement(1) - 1) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "UPDATE cases SET state = 'issued', stage_worker = NULL, \
                 stage_lease_until = NULL, stage_attempts = 0, stage_error = NULL \
                 WHERE state = 'owner_found' AND stage_worker = ",
            );
            qb.push_bind(worker).push(" AND id IN (");
            let mut ids = qb.separated(", ");
            for resolution in chunk {
                ids.push_bind(resolution.case_id.0);
            }
            qb.push(") RETURNING id");
            for row in qb.build().fetch_all(&mut *tx).await? {
                moved.insert(CaseId(row.try_get("id")?));
            }
        }
        // A case given twice is recorded once: its first copy; the others found it
        // moved already, as they would one at a time.
        let mut first = HashSet::with_capacity(resolutions.len());
        let (recorded, unrecorded): (Vec<&NewResolution>, Vec<&NewResolution>) = resolutions
            .iter()
            .partition(|r| moved.contains(&r.case_id) && first.insert(r.case_id));
        let blobs: Vec<_> = recorded
            .iter()
            .map(|r| (&r.pdf.sha256, &r.pdf.location))
            .collect();
        insert_blobs(&mut tx, &blobs).await?;
        // The PDFs of cases no longer this worker's (or given twice): stored, never
        // to be read.
        let unkept: Vec<_> = unrecorded
            .iter()
            .map(|r| (&r.pdf.sha256, &r.pdf.location))
            .collect();
        crate::sqlite_recognition::record_unkept(&mut tx, &unkept).await?;
        for chunk in recorded.chunks(rows_per_statement(15)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO resolutions (number, case_id, payment_code, jurisdiction, article, \
                 units, amount_minor, discounted_minor, currency, issued_at, pdf_sha256, \
                 signature, signature_key_id, signer, repeat_of) ",
            );
            qb.push_values(chunk, |mut row, resolution| {
                row.push_bind(resolution.number.as_str())
                    .push_bind(resolution.case_id.0)
                    .push_bind(resolution.payment_code.as_str())
                    .push_bind(resolution.jurisdiction.as_str())
                    .push_bind(resolution.article.as_str())
                    .push_bind(i64::from(resolution.units))
                    .push_bind(resolution.amount.minor)
                    .push_bind(resolution.discounted.map(|d| d.minor))
                    .push_bind(resolution.amount.currency.code())
                    .push_bind(ms(resolution.issued_at))
                    .push_bind(&resolution.pdf.sha256[..])
                    .push_bind(&resolution.signature[..])
                    .push_bind(resolution.signature_key_id.as_str())
                    .push_bind(resolution.signer.as_str())
                    .push_bind(resolution.repeat_of.as_deref());
            });
            qb.build().execute(&mut *tx).await.map_err(|e| {
                crate::error::db_error(e, || {
                    let numbers: Vec<&str> = chunk.iter().map(|r| r.number.as_str()).collect();
                    format!("resolutions {} or their payment codes", numbers.join(", "))
                })
            })?;
        }
        // Planned with the resolutions, so an issued resolution is never without its
        // deliveries (a crash between the two would lose them).
        let planned: Vec<(&str, CaseId)> = recorded
            .iter()
            .map(|r| (r.number.as_str(), r.case_id))
            .collect();
        crate::sqlite_delivery::plan_deliveries(&mut tx, &planned, ms(now)).await?;
        let details: Vec<String> = recorded
            .iter()
            .map(|r| stages::resolution_detail(r))
            .collect();
        let audits: Vec<_> = recorded
            .iter()
            .zip(&details)
            .map(|(r, detail)| stages::resolution_audit(r, &actor, detail, now))
            .collect();
        insert_audits(&mut tx, &audits).await?;
        tx.commit().await?;
        let mut reported = HashSet::with_capacity(recorded.len());
        Ok(resolutions
            .iter()
            .map(|r| {
                if moved.contains(&r.case_id) && reported.insert(r.case_id) {
                    CompleteResult::Completed
                } else {
                    CompleteResult::LeaseLost
                }
            })
            .collect())
    }

    async fn stage_attempts(&self, case_id: CaseId) -> Result<u32, StoreError> {
        let attempts: Option<i64> =
            sqlx::query_scalar("SELECT stage_attempts FROM cases WHERE id = ?")
                .bind(case_id.0)
                .fetch_optional(&self.reader)
                .await?;
        Ok(attempts.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn set_aside(
        &self,
        worker: &str,
        case_id: CaseId,
        from: CaseState,
        to: CaseState,
        reason: &str,
    ) -> Result<CompleteResult, StoreError> {
        let now = now_millis();
        let actor = stages::actor(worker);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let moved = sqlx::query(
            "UPDATE cases SET state = ?, stage_worker = NULL, stage_lease_until = NULL, \
             stage_attempts = 0, stage_error = ? \
             WHERE id = ? AND state = ? AND stage_worker = ?",
        )
        .bind(to.as_str())
        .bind(reason)
        .bind(case_id.0)
        .bind(from.as_str())
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(CompleteResult::LeaseLost);
        }
        insert_audit(
            &mut tx,
            &stages::set_aside_audit(case_id, from, to, &actor, reason, now),
        )
        .await?;
        tx.commit().await?;
        Ok(CompleteResult::Completed)
    }

    async fn resolution(&self, number: &str) -> Result<Option<ResolutionRecord>, StoreError> {
        sqlx::query(resolution_select!("WHERE r.number = ?"))
            .bind(number)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(resolution_from_row)
            .transpose()
    }

    async fn resolution_of_case(
        &self,
        case_id: CaseId,
    ) -> Result<Option<ResolutionRecord>, StoreError> {
        sqlx::query(resolution_select!("WHERE r.case_id = ?"))
            .bind(case_id.0)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(resolution_from_row)
            .transpose()
    }

    async fn resolutions_of_cases(
        &self,
        cases: &[CaseId],
    ) -> Result<Vec<ResolutionRecord>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let mut resolutions = Vec::with_capacity(cases.len());
        for chunk in cases.chunks(rows_per_statement(1)) {
            let head = resolution_select!("WHERE r.case_id IN (");
            for row in select_in(&mut conn, head, chunk, ")").await? {
                resolutions.push(resolution_from_row(&row)?);
            }
        }
        Ok(resolutions)
    }
}

fn lookup_from_row(row: &SqliteRow) -> Result<OwnerLookupRecord, StoreError> {
    let vehicle: String = row.try_get("vehicle")?;
    LookupColumns {
        case_id: row.try_get("case_id")?,
        outcome: row.try_get("outcome")?,
        owner_kind: row.try_get("owner_kind")?,
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        owner_address: row.try_get("owner_address")?,
        vehicle: serde_json::from_str(&vehicle)
            .map_err(|e| StoreError::Corrupt(format!("vehicle json: {e}")))?,
        registry_owner: row
            .try_get::<Option<String>, _>("registry_owner")?
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("registry owner json: {e}")))?,
        reason: row.try_get("reason")?,
        exchange_id: row.try_get("exchange_id")?,
        looked_up_at: decode::millis(row.try_get("looked_up_at")?)?,
    }
    .record()
}

/// Rows of `head` + the ids, comma-separated binds + `tail`.
async fn select_in(
    conn: &mut SqliteConnection,
    head: &str,
    ids: &[CaseId],
    tail: &str,
) -> Result<Vec<SqliteRow>, StoreError> {
    let mut qb = QueryBuilder::<Sqlite>::new(head);
    let mut list = qb.separated(", ");
    for id in ids {
        list.push_bind(id.0);
    }
    qb.push(tail);
    Ok(qb.build().fetch_all(&mut *conn).await?)
}
