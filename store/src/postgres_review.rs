//! Review decisions on PostgreSQL: the state move, the review row and its audit row in one
//! transaction; the conditional UPDATE settles a race between two reviewers.

use async_trait::async_trait;
use kozomol_core::CaseId;
use sqlx::Row;

use crate::audit::now_millis;
use crate::postgres::PgStore;
use crate::postgres_recognition::insert_audit;
use crate::review::{self, ReviewColumns};
use crate::{decode, NewReview, ReviewLog, ReviewRecord, ReviewWrite, StoreError};

#[async_trait]
impl ReviewLog for PgStore {
    async fn record_review(&self, review: &NewReview) -> Result<ReviewWrite, StoreError> {
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE cases SET state = $1, decided_plate = COALESCE($2, decided_plate), \
             stage_worker = NULL, stage_lease_until = NULL, \
             checks_passed_at = CASE WHEN $1 = 'approved' THEN NULL ELSE checks_passed_at END \
             WHERE id = $3 AND state = $4",
        )
        .bind(review.to_state.as_str())
        .bind(review.plate.as_deref())
        .bind(review.case_id.0)
        .bind(review.from_state.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            let current: Option<String> =
                sqlx::query_scalar("SELECT state FROM cases WHERE id = $1")
                    .bind(review.case_id.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Ok(ReviewWrite::StateChanged(decode::opt_state(current)?));
        }
        if let Some(seen) = review.seen_move {
            // Read after the case's row is written: any move committed before is seen,
            // and none can commit until this decision does.
            let latest: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(id) FROM audit_log WHERE case_id = $1 AND to_state IS NOT NULL",
            )
            .bind(review.case_id.0)
            .fetch_one(&mut *tx)
            .await?;
            if latest != Some(seen) {
                tx.rollback().await?;
                return Ok(ReviewWrite::MovedSince(latest));
            }
        }
        sqlx::query(
            "INSERT INTO reviews (case_id, tier, reviewer, decision, reason, plate, note, \
             from_state, to_state, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(review.case_id.0)
        .bind(review.tier.as_str())
        .bind(review.reviewer.as_str())
        .bind(review.decision.as_str())
        .bind(review.reason.map(|r| r.as_str()))
        .bind(review.plate.as_deref())
        .bind(review.note.as_deref())
        .bind(review.from_state.as_str())
        .bind(review.to_state.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let detail = review::detail(review);
        insert_audit(&mut tx, &review::audit(review, &detail, now)).await?;
        tx.commit().await?;
        Ok(ReviewWrite::Recorded)
    }

    async fn reviews(&self, case_id: CaseId) -> Result<Vec<ReviewRecord>, StoreError> {
        sqlx::query(
            "SELECT id, case_id, tier, reviewer, decision, reason, plate, note, from_state, \
             to_state, decided_at FROM reviews WHERE case_id = $1 ORDER BY id",
        )
        .bind(case_id.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            ReviewColumns {
                id: row.try_get("id")?,
                case_id: row.try_get("case_id")?,
                tier: row.try_get("tier")?,
                reviewer: row.try_get("reviewer")?,
                decision: row.try_get("decision")?,
                reason: row.try_get("reason")?,
                plate: row.try_get("plate")?,
                note: row.try_get("note")?,
                from_state: row.try_get("from_state")?,
                to_state: row.try_get("to_state")?,
                decided_at: row.try_get("decided_at")?,
            }
            .record()
        })
        .collect()
    }

    async fn decided_plate(&self, case_id: CaseId) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT decided_plate FROM cases WHERE id = $1")
                .bind(case_id.0)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }
}
