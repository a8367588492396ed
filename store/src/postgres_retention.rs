//! Retention of personal data on PostgreSQL: one transaction a pass, its cases and
//! accidents claimed `FOR UPDATE SKIP LOCKED`, so processes purging at once never take
//! the same one, and no other transaction moves a case while it is purged.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kozomol_core::CaseId;
// The dynamic statements are made of constants only (retention.rs): nothing a
// caller gives reaches their text.
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::audit::now_millis;
use crate::postgres::PgStore;
use crate::postgres_recognition::insert_audit;
use crate::retention::{
    self, accident_detail, case_detail, case_purges, contacts_detail, participants_purge,
    settled_states_sql, CasePurge, PurgeReport, ACCIDENT_PURGED, CONTACTS_PURGED,
};
use crate::{PersonalDataRetention, StoreError};

#[async_trait]
impl PersonalDataRetention for PgStore {
    async fn purge_personal_data(
        &self,
        quiet_since: DateTime<Utc>,
        limit: u32,
        actor: &str,
    ) -> Result<PurgeReport, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now_millis();
        let cases = purge_cases(&mut tx, quiet_since, limit, actor, now).await?;
        let accidents = purge_accidents(&mut tx, quiet_since, limit, actor, now).await?;
        let contacts = purge_contacts(&mut tx, quiet_since, limit, actor, now).await?;
        tx.commit().await?;
        Ok(PurgeReport {
            cases,
            accidents,
            contacts,
        })
    }
}

async fn purge_cases(
    tx: &mut PgConnection,
    quiet_since: DateTime<Utc>,
    limit: u32,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<CaseId>, StoreError> {
    let ids: Vec<i64> = sqlx::query(AssertSqlSafe(format!(
        "SELECT c.id FROM cases c \
         WHERE c.personal_data_purged_at IS NULL AND c.captured_at < $1 \
           AND c.state IN ({}) \
           AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.case_id = c.id \
                           AND a.action LIKE 'case.%' AND a.at >= $1) \
           AND NOT EXISTS (SELECT 1 FROM refund_requests r WHERE r.case_id = c.id \
                           AND r.state = 'queued') \
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.case_id = c.id \
                           AND (d.state IN ('queued', 'sending') \
                                OR (d.state = 'sent' AND d.next_attempt_at IS NOT NULL))) \
           AND NOT EXISTS (SELECT 1 FROM nominations n \
                           JOIN cases r ON r.id = n.reissued_case_id \
                           WHERE n.case_id = c.id AND r.personal_data_purged_at IS NULL) \
         ORDER BY c.captured_at, c.id LIMIT $2 FOR UPDATE OF c SKIP LOCKED",
        settled_states_sql()
    )))
    .bind(quiet_since)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let statements = case_purges("$1");
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
        sqlx::query("UPDATE cases SET personal_data_purged_at = $1 WHERE id = $2")
            .bind(now)
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
    tx: &mut PgConnection,
    quiet_since: DateTime<Utc>,
    limit: u32,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let ids: Vec<i64> = sqlx::query(
        "SELECT a.id FROM accidents a \
         WHERE a.personal_data_purged_at IS NULL AND a.state = 'closed' \
           AND NOT EXISTS (SELECT 1 FROM accident_moves m WHERE m.accident_id = a.id \
                           AND m.at >= $1) \
           AND NOT EXISTS (SELECT 1 FROM officer_filings f JOIN cases c ON c.id = f.case_id \
                           WHERE f.accident_id = a.id AND c.personal_data_purged_at IS NULL) \
         ORDER BY a.id LIMIT $2 FOR UPDATE OF a SKIP LOCKED",
    )
    .bind(quiet_since)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let purge = participants_purge("$1");
    for &id in &ids {
        let participants = sqlx::query(AssertSqlSafe(purge.as_str()))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE accidents SET personal_data_purged_at = $1 WHERE id = $2")
            .bind(now)
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

async fn purge_contacts(
    tx: &mut PgConnection,
    quiet_since: DateTime<Utc>,
    limit: u32,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let deleted = sqlx::query(
        "DELETE FROM owner_contacts WHERE id IN (\
           SELECT o.id FROM owner_contacts o WHERE o.added_at < $1 \
           AND NOT EXISTS (SELECT 1 FROM owner_lookups l JOIN cases c ON c.id = l.case_id \
                           WHERE l.owner_kind IN ('person', 'company') \
                           AND l.owner_id = o.owner_id \
                           AND c.personal_data_purged_at IS NULL) \
           ORDER BY o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED)",
    )
    .bind(quiet_since)
    .bind(i64::from(limit))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if deleted > 0 {
        let detail = contacts_detail(deleted, quiet_since);
        insert_audit(
            tx,
            &retention::untied_audit(CONTACTS_PURGED, actor, &detail, now),
        )
        .await?;
    }
    Ok(deleted)
}
