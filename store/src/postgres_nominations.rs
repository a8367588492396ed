//! Owner liability on PostgreSQL: an offender's earlier resolutions, and the owner's
//! statements, each recorded with its state moves and audit rows in one transaction
//! that holds the case's row, so two statements against one resolution queue up and
//! the second finds the first.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, CaseState, OwnerKind};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::checks::{self, HOT_LIST_ADDED};
use crate::error::{corrupt, db_error};
use crate::nominations::{
    self, Claim, NewNomination, NominatedDriver, NominationColumns, NominationRecord,
    NominationRecorded, OffenderLists, OffenderResolution, Offenders, CASE_REISSUED, NOMINABLE,
    OFFENDERS_SELECT,
};
use crate::postgres::{finish_unchanged, PgStore};
use crate::postgres_appeals::{move_case, request_refund, stop_clock};
use crate::postgres_checks::hot_list_from_row;
use crate::postgres_recognition::insert_audit;
use crate::recognition::audit_row;
use crate::{decode, StoreError};

fn nomination_from_row(row: &PgRow) -> Result<NominationRecord, StoreError> {
    NominationColumns {
        id: row.try_get("id")?,
        case_id: row.try_get("case_id")?,
        resolution_number: row.try_get("resolution_number")?,
        kind: row.try_get("kind")?,
        driver_pin: row.try_get("driver_pin")?,
        driver_name: row.try_get("driver_name")?,
        driver_address: row.try_get("driver_address")?,
        police_report: row.try_get("police_report")?,
        reported_at: row.try_get("reported_at")?,
        statement: row.try_get("statement")?,
        from_state: row.try_get("from_state")?,
        reissued_case_id: row.try_get("reissued_case_id")?,
        recorded_by: row.try_get("recorded_by")?,
        recorded_at: row.try_get("recorded_at")?,
    }
    .record()
}

async fn nomination_of(
    conn: &mut PgConnection,
    resolution_number: &str,
) -> Result<Option<NominationRecord>, StoreError> {
    sqlx::query(
        "SELECT id, case_id, resolution_number, kind, driver_pin, driver_name, \
         driver_address, police_report, reported_at, statement, from_state, \
         reissued_case_id, recorded_by, recorded_at FROM nominations \
         WHERE resolution_number = $1",
    )
    .bind(resolution_number)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(nomination_from_row)
    .transpose()
}

/// Opens the case re-issued to `driver`: the original's event, frames and decided
/// plate, in `owner_found`, with an owner lookup that names the driver.
async fn reissue(
    tx: &mut PgConnection,
    from: CaseId,
    nomination_id: i64,
    nomination: &NewNomination,
    driver: &NominatedDriver,
    now: DateTime<Utc>,
) -> Result<CaseId, StoreError> {
    // A fresh event id: (camera, event id) stays the original case's.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO cases (event_id, camera_id, captured_at, received_at, kind, state, plate, \
         enforceable, enforceability_note, fingerprint, event, decided_plate) \
         SELECT $1, camera_id, captured_at, $2, kind, 'owner_found', plate, enforceable, \
         enforceability_note, fingerprint, event, decided_plate FROM cases WHERE id = $3 \
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(now)
    .bind(from.0)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO case_frames (case_id, idx, role, sha256) \
         SELECT $1, idx, role, sha256 FROM case_frames WHERE case_id = $2",
    )
    .bind(id)
    .bind(from.0)
    .execute(&mut *tx)
    .await?;
    let looked_up = sqlx::query(
        "INSERT INTO owner_lookups (case_id, outcome, owner_kind, owner_id, owner_name, \
         owner_address, vehicle, reason, exchange_id, looked_up_at) \
         SELECT $1, 'found', $2, $3, $4, $5, vehicle, $6, NULL, $7 FROM owner_lookups WHERE case_id = $8",
    )
    .bind(id)
    .bind(OwnerKind::Person.as_str())
    .bind(driver.pin.trim())
    .bind(driver.name.trim())
    .bind(driver.address.as_deref())
    .bind(nominations::reissue_reason(nomination_id, nomination))
    .bind(now)
    .bind(from.0)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if looked_up != 1 {
        return Err(corrupt(format!(
            "case {from} was issued without an owner lookup"
        )));
    }
    Ok(CaseId(id))
}

/// Puts the stolen car's plate on the hot list unless it is there already.
async fn list_stolen(
    tx: &mut PgConnection,
    plate: &str,
    nomination: &NewNomination,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let Some(row) = sqlx::query(
        "INSERT INTO hot_list (plate, reason, note, listed_at, listed_by) \
         VALUES ($1, 'stolen', $2, $3, $4) \
         ON CONFLICT (plate) WHERE removed_at IS NULL DO NOTHING \
         RETURNING id, plate, reason, note, listed_at, listed_by, removed_at, removed_by",
    )
    .bind(plate)
    .bind(format!(
        "reported stolen by the owner against resolution {}",
        nomination.resolution_number
    ))
    .bind(now)
    .bind(nomination.recorded_by.as_str())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let entry = hot_list_from_row(&row)?;
    let detail = checks::hot_list_detail(&entry);
    insert_audit(
        tx,
        &checks::audit(None, HOT_LIST_ADDED, &nomination.recorded_by, &detail, now),
    )
    .await?;
    Ok(Some(entry.id))
}

#[async_trait]
impl Offenders for PgStore {
    async fn offenders_resolutions(
        &self,
        offenders: &[(OwnerKind, &str)],
        before: DateTime<Utc>,
    ) -> Result<Vec<Vec<OffenderResolution>>, StoreError> {
        let mut lists = OffenderLists::new(offenders);
        let distinct = lists.distinct();
        for chunk in distinct.chunks(crate::postgres::rows_per_statement(2) - 1) {
            let mut qb = QueryBuilder::<Postgres>::new("WITH asked (kind, id) AS (");
            qb.push_values(chunk, |mut row, (kind, id)| {
                row.push_bind(kind.as_str()).push_bind(*id);
            });
            qb.push(OFFENDERS_SELECT);
            qb.push_bind(before).push(" ORDER BY r.issued_at, r.number");
            for row in qb.build().fetch_all(&self.pool).await? {
                let kind: String = row.try_get("owner_kind")?;
                let id: String = row.try_get("owner_id")?;
                let jurisdiction: String = row.try_get("jurisdiction")?;
                let resolution = OffenderResolution {
                    number: row.try_get("number")?,
                    case_id: CaseId(row.try_get("case_id")?),
                    jurisdiction: jurisdiction
                        .parse()
                        .map_err(|_| corrupt(format!("jurisdiction `{jurisdiction}`")))?,
                    article: row.try_get("article")?,
                    issued_at: row.try_get("issued_at")?,
                    state: decode::state(&row.try_get::<String, _>("state")?)?,
                };
                lists.add(kind, id, resolution);
            }
        }
        Ok(lists.finish())
    }

    async fn record_nomination(
        &self,
        nomination: &NewNomination,
    ) -> Result<NominationRecorded, StoreError> {
        nominations::check_nomination(nomination)?;
        let now = Utc::now();
        let number = nomination.resolution_number.as_str();
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query(
            "SELECT r.case_id, c.state, COALESCE(c.decided_plate, c.plate) AS plate, \
             c.personal_data_purged_at \
             FROM resolutions r JOIN cases c ON c.id = r.case_id WHERE r.number = $1 \
             FOR UPDATE OF c",
        )
        .bind(number)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return finish_unchanged(tx, Ok(NominationRecorded::NotFound)).await;
        };
        if let Some(at) = row.try_get::<Option<DateTime<Utc>>, _>("personal_data_purged_at")? {
            return finish_unchanged(tx, Ok(NominationRecorded::Purged(at))).await;
        }
        let case_id = CaseId(row.try_get("case_id")?);
        let state = decode::state(&row.try_get::<String, _>("state")?)?;
        let plate: Option<String> = row.try_get("plate")?;
        if let Some(earlier) = nomination_of(&mut tx, number).await? {
            let recorded = NominationRecorded::AlreadyRecorded(earlier.id);
            return finish_unchanged(tx, Ok(recorded)).await;
        }
        if !NOMINABLE.contains(&state) {
            return finish_unchanged(tx, Ok(NominationRecorded::NotOpen(state))).await;
        }
        let (driver, stolen) = match &nomination.claim {
            Claim::Driver { driver } => (Some(driver), None),
            Claim::Stolen {
                police_report,
                reported_at,
            } => (None, Some((police_report.trim(), *reported_at))),
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO nominations (case_id, resolution_number, kind, driver_pin, \
             driver_name, driver_address, police_report, reported_at, statement, from_state, \
             recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(case_id.0)
        .bind(number)
        .bind(nomination.claim.kind())
        .bind(driver.map(|d| d.pin.trim()))
        .bind(driver.map(|d| d.name.trim()))
        .bind(driver.and_then(|d| d.address.as_deref()))
        .bind(stolen.map(|s| s.0))
        .bind(stolen.map(|s| s.1))
        .bind(nomination.statement.trim())
        .bind(state.as_str())
        .bind(nomination.recorded_by.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error(e, || format!("a statement against resolution {number}")))?;
        if !move_case(&mut tx, case_id, state, CaseState::Annulled).await? {
            return Err(corrupt(format!(
                "case {case_id} moved inside its transaction"
            )));
        }
        stop_clock(&mut tx, case_id).await?;
        let reissued = match driver {
            Some(driver) => {
                let new = reissue(&mut tx, case_id, id, nomination, driver, now).await?;
                sqlx::query("UPDATE nominations SET reissued_case_id = $1 WHERE id = $2")
                    .bind(new.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                Some(new)
            }
            None => None,
        };
        let detail = nominations::detail(id, nomination, reissued);
        let actor = nomination.recorded_by.as_str();
        insert_audit(
            &mut tx,
            &audit_row(
                case_id,
                nominations::action(&nomination.claim),
                Some(state),
                Some(CaseState::Annulled),
                actor,
                &detail,
                now,
            ),
        )
        .await?;
        if let Some(new) = reissued {
            insert_audit(
                &mut tx,
                &audit_row(
                    new,
                    CASE_REISSUED,
                    None,
                    Some(CaseState::OwnerFound),
                    actor,
                    &detail,
                    now,
                ),
            )
            .await?;
        }
        // Whatever the state, the money it took (if any) goes back.
        let why = format!("owner's statement {id} annulled resolution {number}");
        let refund_request = request_refund(&mut tx, case_id, "annulled", &why, actor).await?;
        let hot_list_entry = match (stolen, plate.as_deref()) {
            (Some(_), Some(plate)) => list_stolen(&mut tx, plate, nomination, now).await?,
            _ => None,
        };
        let record = nomination_of(&mut tx, number)
            .await?
            .ok_or_else(|| corrupt("the statement just recorded is missing"))?;
        tx.commit().await?;
        Ok(NominationRecorded::Recorded {
            nomination: Box::new(record),
            refund_request,
            hot_list_entry,
        })
    }

    async fn nomination(
        &self,
        resolution_number: &str,
    ) -> Result<Option<NominationRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        nomination_of(&mut conn, resolution_number).await
    }

    async fn reissued_from(&self, case_id: CaseId) -> Result<Option<CaseId>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT case_id FROM nominations WHERE reissued_case_id = $1")
                .bind(case_id.0)
                .fetch_optional(&self.pool)
                .await?
                .map(CaseId),
        )
    }
}
