//! The stages after review on PostgreSQL: claims under a lease (`FOR UPDATE SKIP
//! LOCKED`, leases on the server's clock), the owner lookup and the issued resolution,
//! each stored with its state move and audit row in one transaction.

use std::time::Duration;

use async_trait::async_trait;
use kozomol_core::{CaseId, CaseState};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::audit::now_millis;
use crate::postgres::{location_from_row, PgStore};
use crate::postgres_recognition::{insert_audit, insert_evidence};
use crate::recognition::delay_millis;
use crate::stages::{self, lookup_select, LookupColumns, ResolutionColumns};
use crate::{
    CompleteResult, FineStages, IssuingRead, NewResolution, OwnerLookupRecord, ResolutionRecord,
    StoreError,
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

pub(crate) fn resolution_from_row(row: &PgRow) -> Result<ResolutionRecord, StoreError> {
    ResolutionColumns {
        number: row.try_get("number")?,
        case_id: row.try_get("case_id")?,
        payment_code: row.try_get("payment_code")?,
        jurisdiction: row.try_get("jurisdiction")?,
        article: row.try_get("article")?,
        units: i64::from(row.try_get::<i32, _>("units")?),
        amount_minor: row.try_get("amount_minor")?,
        discounted_minor: row.try_get("discounted_minor")?,
        currency: row.try_get("currency")?,
        issued_at: row.try_get("issued_at")?,
        pdf_sha256: row.try_get("pdf_sha256")?,
        pdf_location: location_from_row(row)?,
        signature: row.try_get("signature")?,
        signature_key_id: row.try_get("signature_key_id")?,
        signer: row.try_get("signer")?,
        delivered_at: row.try_get("delivered_at")?,
        delivered_via: row.try_get("delivered_via")?,
        repeat_of: row.try_get("repeat_of")?,
    }
    .record()
}

#[async_trait]
impl FineStages for PgStore {
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
        let mut tx = self.pool.begin().await?;
        let mut ids: Vec<CaseId> = sqlx::query_scalar(
            "UPDATE cases SET stage_worker = $1, \
             stage_lease_until = now() + $2::double precision * interval '1 millisecond', \
             stage_attempts = stage_attempts + 1 \
             WHERE id = ANY (ARRAY (SELECT id FROM cases WHERE state = $3 \
             AND (stage_lease_until IS NULL OR stage_lease_until <= now()) \
             ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)) \
             RETURNING id",
        )
        .bind(worker)
        // Exact: leases are capped at a year, some 3.2e10 milliseconds.
        .bind(delay_millis(lease) as f64)
        .bind(state.as_str())
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
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE cases SET state = $1, stage_worker = NULL, stage_lease_until = NULL, \
             stage_attempts = 0, stage_error = NULL \
             WHERE id = $2 AND state = 'approved' AND stage_worker = $3",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
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
        .bind(&lookup.vehicle)
        .bind((!lookup.registry_owner.is_null()).then_some(&lookup.registry_owner))
        .bind(lookup.reason.as_deref())
        .bind(lookup.exchange_id.as_deref())
        .bind(lookup.looked_up_at)
        .execute(&mut *tx)
        .await?;
        let detail = stages::lookup_detail(lookup);
        insert_audit(&mut tx, &stages::lookup_audit(lookup, &actor, &detail, now)).await?;
        tx.commit().await?;
        Ok(CompleteResult::Completed)
    }

    async fn owner_lookup(&self, case_id: CaseId) -> Result<Option<OwnerLookupRecord>, StoreError> {
        sqlx::query(concat!(lookup_select!(), "WHERE case_id = $1"))
            .bind(case_id.0)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(lookup_from_row)
            .transpose()
    }

    async fn owner_lookups(&self, cases: &[CaseId]) -> Result<Vec<OwnerLookupRecord>, StoreError> {
        let ids: Vec<i64> = cases.iter().map(|c| c.0).collect();
        sqlx::query(concat!(lookup_select!(), "WHERE case_id = ANY($1)"))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(lookup_from_row)
            .collect()
    }

    async fn issuing_reads(
        &self,
        cases: &[CaseId],
    ) -> Result<Vec<Option<IssuingRead>>, StoreError> {
        use crate::nominations::Offenders;
        use crate::{CaseStore, RecognitionQueue, ReviewLog};
        let mut reads = Vec::with_capacity(cases.len());
        for &case_id in cases {
            let Some(case) = self.case(case_id).await? else {
                reads.push(None);
                continue;
            };
            let reissued_from = self.reissued_from(case_id).await?;
            let evidence = reissued_from.unwrap_or(case_id);
            let attempts = self.stage_attempts(case_id).await?;
            reads.push(Some(IssuingRead {
                case,
                attempts,
                decided_plate: self.decided_plate(case_id).await?,
                lookup: self.owner_lookup(case_id).await?,
                reissued_from,
                crop: self.recognition(evidence).await?.and_then(|r| r.crop),
                reviews: self.reviews(evidence).await?,
            }));
        }
        Ok(reads)
    }

    async fn reserve_resolution_numbers(
        &self,
        cases: &[CaseId],
        issuer: &str,
        year: i32,
    ) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A reservation made for another year (or issuer) was never used: a case that
        // comes back after the new year takes one of the year it is issued in.
        let ids: Vec<i64> = cases.iter().map(|c| c.0).collect();
        sqlx::query(
            "DELETE FROM resolution_numbers n WHERE n.case_id = ANY($1) \
             AND (n.issuer <> $2 OR n.year <> $3) \
             AND NOT EXISTS (SELECT 1 FROM resolutions r WHERE r.case_id = n.case_id)",
        )
        .bind(&ids)
        .bind(issuer)
        .bind(year)
        .execute(&mut *tx)
        .await?;
        let mut numbers = Vec::with_capacity(cases.len());
        for &case_id in cases {
            numbers.push(reserve_number(&mut tx, case_id, issuer, year).await?);
        }
        tx.commit().await?;
        Ok(numbers)
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
        let mut tx = self.pool.begin().await?;
        let mut results = Vec::with_capacity(resolutions.len());
        let mut unkept = Vec::new();
        for resolution in resolutions {
            let result = record_one(&mut tx, worker, &actor, resolution, now).await?;
            if result == CompleteResult::LeaseLost {
                unkept.push((&resolution.pdf.sha256, &resolution.pdf.location));
            }
            results.push(result);
        }
        // The PDFs of cases no longer this worker's (or given twice): stored, never
        // to be read.
        crate::postgres_recognition::record_unkept(&mut tx, &unkept).await?;
        tx.commit().await?;
        Ok(results)
    }

    async fn stage_attempts(&self, case_id: CaseId) -> Result<u32, StoreError> {
        let attempts: Option<i32> =
            sqlx::query_scalar("SELECT stage_attempts FROM cases WHERE id = $1")
                .bind(case_id.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(attempts.map_or(0, |n| u32::try_from(n).unwrap_or(0)))
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
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE cases SET state = $1, stage_worker = NULL, stage_lease_until = NULL, \
             stage_attempts = 0, stage_error = $2 \
             WHERE id = $3 AND state = $4 AND stage_worker = $5",
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
        sqlx::query(resolution_select!("WHERE r.number = $1"))
            .bind(number)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(resolution_from_row)
            .transpose()
    }

    async fn resolution_of_case(
        &self,
        case_id: CaseId,
    ) -> Result<Option<ResolutionRecord>, StoreError> {
        sqlx::query(resolution_select!("WHERE r.case_id = $1"))
            .bind(case_id.0)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(resolution_from_row)
            .transpose()
    }

    async fn resolutions_of_cases(
        &self,
        cases: &[CaseId],
    ) -> Result<Vec<ResolutionRecord>, StoreError> {
        let ids: Vec<i64> = cases.iter().map(|c| c.0).collect();
        sqlx::query(resolution_select!("WHERE r.case_id = ANY($1)"))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(resolution_from_row)
            .collect()
    }
}

/// The case's reserved number, or the next free one, reserved now.
async fn reserve_number(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    case_id: CaseId,
    issuer: &str,
    year: i32,
) -> Result<u64, StoreError> {
    let reserved: Option<i64> = sqlx::query_scalar(
        "SELECT sequence FROM resolution_numbers WHERE case_id = $1 AND issuer = $2 AND year = $3",
    )
    .bind(case_id.0)
    .bind(issuer)
    .bind(year)
    .fetch_optional(&mut **tx)
    .await?;
    let sequence = match reserved {
        Some(sequence) => sequence,
        None => {
            let sequence: i64 = sqlx::query_scalar(
                "INSERT INTO resolution_counters (issuer, year, next) VALUES ($1, $2, 2) \
                     ON CONFLICT (issuer, year) DO UPDATE SET next = resolution_counters.next + 1 \
                     RETURNING next - 1",
            )
            .bind(issuer)
            .bind(year)
            .fetch_one(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO resolution_numbers (case_id, issuer, year, sequence) \
                     VALUES ($1, $2, $3, $4)",
            )
            .bind(case_id.0)
            .bind(issuer)
            .bind(year)
            .bind(sequence)
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                crate::error::db_error(e, || format!("a resolution number for case {case_id}"))
            })?;
            sequence
        }
    };
    u64::try_from(sequence).map_err(|_| StoreError::Corrupt(format!("sequence {sequence}")))
}

/// One resolution of a batch: the case's move, the resolution, its deliveries, audit.
async fn record_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    worker: &str,
    actor: &str,
    resolution: &NewResolution,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<CompleteResult, StoreError> {
    let moved = sqlx::query(
        "UPDATE cases SET state = 'issued', stage_worker = NULL, stage_lease_until = NULL, \
             stage_attempts = 0, stage_error = NULL \
             WHERE id = $1 AND state = 'owner_found' AND stage_worker = $2",
    )
    .bind(resolution.case_id.0)
    .bind(worker)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if moved == 0 {
        return Ok(CompleteResult::LeaseLost);
    }
    insert_evidence(tx, &resolution.pdf).await?;
    sqlx::query(
        "INSERT INTO resolutions (number, case_id, payment_code, jurisdiction, article, \
             units, amount_minor, discounted_minor, currency, issued_at, pdf_sha256, \
             signature, signature_key_id, signer, repeat_of) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(resolution.number.as_str())
    .bind(resolution.case_id.0)
    .bind(resolution.payment_code.as_str())
    .bind(resolution.jurisdiction.as_str())
    .bind(resolution.article.as_str())
    .bind(
        i32::try_from(resolution.units)
            .map_err(|_| StoreError::Invalid("units out of range".into()))?,
    )
    .bind(resolution.amount.minor)
    .bind(resolution.discounted.map(|d| d.minor))
    .bind(resolution.amount.currency.code())
    .bind(resolution.issued_at)
    .bind(&resolution.pdf.sha256[..])
    .bind(&resolution.signature[..])
    .bind(resolution.signature_key_id.as_str())
    .bind(resolution.signer.as_str())
    .bind(resolution.repeat_of.as_deref())
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        crate::error::db_error(e, || {
            format!("resolution {} or its payment code", resolution.number)
        })
    })?;
    // Planned with the resolution, so an issued resolution is never without its
    // deliveries (a crash between the two would lose them).
    crate::postgres_delivery::plan_deliveries(tx, &resolution.number, resolution.case_id, now)
        .await?;
    let detail = stages::resolution_detail(resolution);
    insert_audit(
        tx,
        &stages::resolution_audit(resolution, actor, &detail, now),
    )
    .await?;
    Ok(CompleteResult::Completed)
}

fn lookup_from_row(row: &PgRow) -> Result<OwnerLookupRecord, StoreError> {
    LookupColumns {
        case_id: row.try_get("case_id")?,
        outcome: row.try_get("outcome")?,
        owner_kind: row.try_get("owner_kind")?,
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        owner_address: row.try_get("owner_address")?,
        vehicle: row.try_get("vehicle")?,
        registry_owner: row.try_get("registry_owner")?,
        reason: row.try_get("reason")?,
        exchange_id: row.try_get("exchange_id")?,
        looked_up_at: row.try_get("looked_up_at")?,
    }
    .record()
}
