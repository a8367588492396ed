//! Retention of personal data and destruction of case files on SQLite: one `BEGIN
//! IMMEDIATE` transaction a pass, so the one writer finds, purges (or destroys) and
//! audits each case without anyone acting between.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kozomol_core::CaseId;
// The dynamic statements are made of constants only (retention.rs): nothing a
// caller gives reaches their text.
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use crate::audit::now_millis;
use crate::destruction::{self, DestructionReport, Erasure, ErasureMark, FileHolder};
use crate::retention::{
    self, accident_detail, case_detail, case_purges, participants_purge, CasePurge, PurgeReport,
    UntiedPurge, ACCIDENT_PURGED,
};
use crate::sqlite::{location_from_row, ms, offset_i64, SqliteStore};
use crate::sqlite_recognition::insert_audit;
use crate::{decode, CaseFileDestruction, EvidenceRef, PersonalDataRetention, StoreError};

#[async_trait]
impl PersonalDataRetention for SqliteStore {
    async fn purge_personal_data(
        &self,
        quiet_since: DateTime<Utc>,
        limit: u32,
        actor: &str,
    ) -> Result<PurgeReport, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_millis();
        let cases = purge_cases(&mut tx, quiet_since, limit, actor, now).await?;
        let accidents = purge_accidents(&mut tx, quiet_since, limit, actor, now).await?;
        let [contacts, dead_letters] = retention::untied_purges("?1", "?2", false);
        let contacts = purge_untied(&mut tx, contacts, quiet_since, limit, actor, now).await?;
        let dead_letters =
            purge_untied(&mut tx, dead_letters, quiet_since, limit, actor, now).await?;
        // Portal contacts never confirmed: kept a day past their code, whether or not
        // new requests come to sweep them.
        sqlx::query("DELETE FROM contact_confirmations WHERE expires_at < ?1")
            .bind(crate::sqlite::ms(now - crate::delivery::LAPSED_KEPT))
            .execute(&mut *tx)
            .await?;
        // Budgets of attempts whole again (a hashed plate or login): nothing to keep.
        sqlx::query("DELETE FROM allowances WHERE full_at < ?1")
            .bind(crate::sqlite::ms(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PurgeReport {
            cases,
            accidents,
            contacts,
            dead_letters,
        })
    }
}

async fn purge_cases(
    tx: &mut SqliteConnection,
    quiet_since: DateTime<Utc>,
    limit: u32,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<CaseId>, StoreError> {
    let ids = ids_due(
        &mut *tx,
        &retention::cases_due("?1", "?2", false),
        quiet_since,
        limit,
    )
    .await?;
    let statements = case_purges("?1");
    let mut purged = Vec::with_capacity(ids.len());
    for id in ids {
        let mut counts = [0u64; 6];
        for (count, sql) in counts.iter_mut().zip(&statements) {
            *count = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        sqlx::query(
            "UPDATE cases SET personal_data_purged_at = ?1, personal_data_quiet_since = ?2 \
             WHERE id = ?3",
        )
        .bind(ms(now))
        .bind(ms(quiet_since))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let detail = case_detail(&CasePurge::from_counts(counts), quiet_since);
        insert_audit(tx, &retention::case_audit(CaseId(id), actor, &detail, now)).await?;
        purged.push(CaseId(id));
    }
    Ok(purged)
}

async fn purge_accidents(
    tx: &mut SqliteConnection,
    quiet_since: DateTime<Utc>,
    limit: u32,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let ids = ids_due(
        &mut *tx,
        &retention::accidents_due("?1", "?2", false),
        quiet_since,
        limit,
    )
    .await?;
    let purge = participants_purge("?1");
    for &id in &ids {
        let participants = sqlx::query(AssertSqlSafe(purge.as_str()))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE accidents SET personal_data_purged_at = ?1 WHERE id = ?2")
            .bind(ms(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let detail = accident_detail(id, participants, quiet_since);
        insert_audit(
            tx,
            &retention::untied_audit(ACCIDENT_PURGED, actor, &detail, now),
        )
        .await?;
    }
    Ok(ids)
}

/// Runs a purge of rows tied to no case and audits what it changed, if anything.
async fn purge_untied(
    tx: &mut SqliteConnection,
    purge: UntiedPurge,
    quiet_since: DateTime<Utc>,
    limit: u32,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let purged = sqlx::query(AssertSqlSafe(purge.sql))
        .bind(ms(quiet_since))
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if purged > 0 {
        let detail = (purge.detail)(purged, quiet_since);
        insert_audit(
            tx,
            &retention::untied_audit(purge.action, actor, &detail, now),
        )
        .await?;
    }
    Ok(purged)
}

#[async_trait]
impl CaseFileDestruction for SqliteStore {
    async fn claim_archive(&self, holder: &str, lease: Duration) -> Result<bool, StoreError> {
        let now = now_millis();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let claimed = sqlx::query(AssertSqlSafe(destruction::claim_lease("?1", "?2", "?3")))
            .bind(holder)
            .bind(ms(now))
            .bind(ms(until))
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(claimed == 1)
    }

    async fn release_archive(&self, holder: &str) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(destruction::release_lease("?1")))
            .bind(holder)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn destroy_case_files(
        &self,
        quiet_before: DateTime<Utc>,
        limit: u32,
        actor: &str,
    ) -> Result<DestructionReport, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_millis();
        // An accident waits for the violations filed under it, so one whose last case
        // goes in this pass goes in the next.
        let cases = ids_due(
            &mut tx,
            &destruction::cases_due("?1", "?2", false),
            quiet_before,
            limit,
        )
        .await?;
        let accidents = ids_due(
            &mut tx,
            &destruction::accidents_due("?1", "?2", false),
            quiet_before,
            limit,
        )
        .await?;
        let mut blobs_erased = 0;
        for (holder, ids) in [
            (FileHolder::Case, &cases),
            (FileHolder::Accident, &accidents),
        ] {
            blobs_erased += destroy_files(&mut tx, holder, ids, quiet_before, actor, now).await?;
        }
        let report = DestructionReport {
            cases: cases.into_iter().map(CaseId).collect(),
            accidents,
            blobs_erased,
        };
        tx.commit().await?;
        Ok(report)
    }

    async fn erasures_due(&self, limit: u32) -> Result<Vec<Erasure>, StoreError> {
        sqlx::query(AssertSqlSafe(destruction::erasures_due("?1", "?2")))
            .bind(ms(now_millis()))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| {
                let sha: Vec<u8> = row.try_get("sha256")?;
                Ok(Erasure {
                    sha256: decode::hash32(&sha, "evidence hash")?,
                    location: location_from_row(row)?,
                })
            })
            .collect()
    }

    async fn erasures_overwritten(&self, erasures: &[Erasure]) -> Result<(), StoreError> {
        mark_erasures(
            &self.writer,
            erasures,
            ErasureMark::Overwritten,
            now_millis(),
        )
        .await
    }

    async fn queue_unkept(&self, unkept: &[EvidenceRef]) -> Result<(), StoreError> {
        if unkept.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = unkept.iter().map(|e| (&e.sha256, &e.location)).collect();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        crate::sqlite_recognition::record_unkept(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn erasures_put_off(
        &self,
        erasures: &[Erasure],
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        mark_erasures(&self.writer, erasures, ErasureMark::RetryAt, retry_at).await
    }

    async fn swept_segments(&self) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        sqlx::query("SELECT segment, written_at FROM evidence_sweeps")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("segment")?,
                    decode::millis(row.try_get("written_at")?)?,
                ))
            })
            .collect()
    }

    async fn sweep_segment(
        &self,
        segment: &str,
        written_at: DateTime<Utc>,
        frames: &[EvidenceRef],
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = frames.iter().map(|e| (&e.sha256, &e.location)).collect();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        crate::sqlite_recognition::record_unkept(&mut tx, &rows).await?;
        sqlx::query(
            "INSERT INTO evidence_sweeps (segment, written_at, swept_at) VALUES (?, ?, ?) \
             ON CONFLICT (segment) DO UPDATE SET written_at = excluded.written_at, \
             swept_at = excluded.swept_at",
        )
        .bind(segment)
        .bind(ms(written_at))
        .bind(ms(now_millis()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Marks the files of `ids` destroyed, erases the blobs only they held, queues where
/// those lie and audits each; the blobs erased.
async fn destroy_files(
    tx: &mut SqliteConnection,
    holder: FileHolder,
    ids: &[i64],
    quiet_before: DateTime<Utc>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let (mark, erase, queue) = (
        holder.mark("?1", "?2"),
        destruction::erase_blobs(holder, "?1", "?2"),
        destruction::queue_erasures(holder, "?1", "?2"),
    );
    let mut erased = 0;
    for &id in ids {
        let run = |sql: &str| {
            sqlx::query(AssertSqlSafe(sql.to_owned()))
                .bind(id)
                .bind(ms(now))
        };
        run(&mark).execute(&mut *tx).await?;
        let blobs = run(&erase).execute(&mut *tx).await?.rows_affected();
        run(&queue).execute(&mut *tx).await?;
        let detail = holder.detail(id, blobs, quiet_before);
        insert_audit(tx, &holder.audit(id, actor, &detail, now)).await?;
        erased += blobs;
    }
    Ok(erased)
}

/// Sets `mark`'s column to `at` on `erasures`.
async fn mark_erasures(
    writer: &sqlx::SqlitePool,
    erasures: &[Erasure],
    mark: ErasureMark,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = writer.begin().await?;
    let sql = format!(
        "UPDATE evidence_erasures SET {} = ?1 \
         WHERE segment = ?2 AND byte_offset = ?3 AND sha256 = ?4",
        mark.column()
    );
    for erasure in erasures {
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(ms(at))
            .bind(erasure.location.segment.as_str())
            .bind(offset_i64(erasure.location.offset))
            .bind(&erasure.sha256[..])
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The ids a selection (`cases_due`, `accidents_due`) finds: rows of `id`, its cut-off
/// bound first and its limit second.
async fn ids_due(
    tx: &mut SqliteConnection,
    sql: &str,
    since: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<i64>, StoreError> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(ms(since))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("id").map_err(StoreError::from))
        .collect()
}
