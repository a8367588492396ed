//! The checks' lists, alerts and sightings on SQLite: every change with its audit row
//! in one `BEGIN IMMEDIATE` transaction.

use async_trait::async_trait;
use kozomol_core::CaseId;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::audit::now_millis;
use crate::checks::{
    self, AlertAcknowledged, AlertQuery, AlertRaised, AlertRecord, ChecksPassed, ExemptionRecord,
    HotListRecord, NewAlert, NewExemption, NewHotListEntry, PlateSighting, PreIssueChecks,
    SightingsQuery, ALERT_ACKNOWLEDGED, ALERT_RAISED, CHECKS_PASSED, EXEMPTION_ADDED,
    EXEMPTION_REMOVED, HOT_LIST_ADDED, HOT_LIST_REMOVED,
};
use crate::error::db_error;
use crate::sqlite::{ms, SqliteStore};
use crate::sqlite_recognition::insert_audit;
use crate::{decode, stages, StoreError};

/// An exemption's columns. Macros because `query()` takes only `&'static str`.
macro_rules! exemption_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, pattern, category, note, valid_from, valid_until, added_by, \
             added_at, removed_at, removed_by FROM exemptions ",
            $rest
        )
    };
}

macro_rules! alert_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, case_id, kind, detail, raised_at, acknowledged_by, acknowledged_at \
             FROM alerts ",
            $rest
        )
    };
}

/// A plate's sightings, bound as (plate, from, until). The plate expression is the one
/// `cases_sightings` indexes.
/// The sightings `query` asks for, read through `executor`.
async fn read_sightings<'e, E>(
    executor: E,
    query: &SightingsQuery<'_>,
) -> Result<Vec<PlateSighting>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    if query.spellings.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "SELECT id, COALESCE(decided_plate, plate) AS sighted_plate, kind, \
         state, captured_at, received_at, checks_passed_at IS NOT NULL AS checks_passed, \
         CASE WHEN json_type(event, '$.site.id') = 'text' \
              THEN json_extract(event, '$.site.id') END AS site_id, \
         CASE WHEN json_type(event, '$.site.lat_e6') = 'integer' \
              THEN json_extract(event, '$.site.lat_e6') END AS site_lat_e6, \
         CASE WHEN json_type(event, '$.site.lon_e6') = 'integer' \
              THEN json_extract(event, '$.site.lon_e6') END AS site_lon_e6 \
         FROM cases WHERE COALESCE(decided_plate, plate) IN (",
    );
    let mut spellings = qb.separated(", ");
    for spelling in query.spellings {
        spellings.push_bind(spelling.clone());
    }
    qb.push(") AND captured_at >= ")
        .push_bind(ms(query.from))
        .push(" AND captured_at <= ")
        .push_bind(ms(query.until))
        .push(" ORDER BY captured_at, id");
    qb.build()
        .fetch_all(executor)
        .await?
        .iter()
        .map(sighting_from_row)
        .collect()
}

fn exemption_from_row(row: &SqliteRow) -> Result<ExemptionRecord, StoreError> {
    Ok(ExemptionRecord {
        id: row.try_get("id")?,
        pattern: row.try_get("pattern")?,
        category: row.try_get("category")?,
        note: row.try_get("note")?,
        valid_from: row.try_get("valid_from")?,
        valid_until: row.try_get("valid_until")?,
        added_by: row.try_get("added_by")?,
        added_at: decode::millis(row.try_get("added_at")?)?,
        removed_at: decode::opt_millis(row.try_get("removed_at")?)?,
        removed_by: row.try_get("removed_by")?,
    })
}

pub(crate) fn hot_list_from_row(row: &SqliteRow) -> Result<HotListRecord, StoreError> {
    Ok(HotListRecord {
        id: row.try_get("id")?,
        plate: row.try_get("plate")?,
        reason: row.try_get("reason")?,
        note: row.try_get("note")?,
        listed_at: decode::millis(row.try_get("listed_at")?)?,
        listed_by: row.try_get("listed_by")?,
        removed_at: decode::opt_millis(row.try_get("removed_at")?)?,
        removed_by: row.try_get("removed_by")?,
    })
}

fn alert_from_row(row: &SqliteRow) -> Result<AlertRecord, StoreError> {
    let detail: String = row.try_get("detail")?;
    Ok(AlertRecord {
        id: row.try_get("id")?,
        case_id: CaseId(row.try_get("case_id")?),
        kind: checks::alert_kind(row.try_get("kind")?)?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| StoreError::Corrupt(format!("alert detail json: {e}")))?,
        raised_at: decode::millis(row.try_get("raised_at")?)?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        acknowledged_at: decode::opt_millis(row.try_get("acknowledged_at")?)?,
    })
}

fn sighting_from_row(row: &SqliteRow) -> Result<PlateSighting, StoreError> {
    Ok(PlateSighting {
        case_id: CaseId(row.try_get("id")?),
        plate: row.try_get("sighted_plate")?,
        kind: decode::kind(row.try_get("kind")?)?,
        site: checks::sighting_site(
            row.try_get("site_id")?,
            row.try_get("site_lat_e6")?,
            row.try_get("site_lon_e6")?,
        ),
        captured_at: decode::millis(row.try_get("captured_at")?)?,
        received_at: decode::millis(row.try_get("received_at")?)?,
        state: decode::state(row.try_get("state")?)?,
        checks_passed: row.try_get("checks_passed")?,
    })
}

#[async_trait]
impl PreIssueChecks for SqliteStore {
    async fn add_exemption(&self, entry: &NewExemption) -> Result<ExemptionRecord, StoreError> {
        checks::check_exemption(entry)?;
        let now = now_millis();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "INSERT INTO exemptions (pattern, category, note, valid_from, valid_until, \
             added_by, added_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             RETURNING id, pattern, category, note, valid_from, valid_until, \
             added_by, added_at, removed_at, removed_by",
        )
        .bind(entry.pattern.as_str())
        .bind(entry.category.as_str())
        .bind(entry.note.as_str())
        .bind(entry.valid_from)
        .bind(entry.valid_until)
        .bind(entry.added_by.as_str())
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let record = exemption_from_row(&row)?;
        let detail = checks::exemption_detail(&record);
        insert_audit(
            &mut tx,
            &checks::audit(None, EXEMPTION_ADDED, &entry.added_by, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn remove_exemption(
        &self,
        id: i64,
        removed_by: &str,
    ) -> Result<Option<ExemptionRecord>, StoreError> {
        let now = now_millis();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(row) = sqlx::query(
            "UPDATE exemptions SET removed_at = ?, removed_by = ? \
             WHERE id = ? AND removed_at IS NULL \
             RETURNING id, pattern, category, note, valid_from, valid_until, \
             added_by, added_at, removed_at, removed_by",
        )
        .bind(ms(now))
        .bind(removed_by)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let record = exemption_from_row(&row)?;
        let detail = checks::exemption_detail(&record);
        insert_audit(
            &mut tx,
            &checks::audit(None, EXEMPTION_REMOVED, removed_by, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    async fn exemptions(&self) -> Result<Vec<ExemptionRecord>, StoreError> {
        sqlx::query(exemption_select!("WHERE removed_at IS NULL ORDER BY id"))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(exemption_from_row)
            .collect()
    }

    async fn add_hot_list_entry(
        &self,
        entry: &NewHotListEntry,
    ) -> Result<HotListRecord, StoreError> {
        checks::check_hot_list_entry(entry)?;
        let now = now_millis();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "INSERT INTO hot_list (plate, reason, note, listed_at, listed_by) \
             VALUES (?, ?, ?, ?, ?) \
             RETURNING id, plate, reason, note, listed_at, listed_by, removed_at, removed_by",
        )
        .bind(entry.plate.as_str())
        .bind(entry.reason.as_str())
        .bind(entry.note.as_str())
        .bind(ms(now))
        .bind(entry.listed_by.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error(e, || format!("a hot-list entry for {}", entry.plate)))?;
        let record = hot_list_from_row(&row)?;
        let detail = checks::hot_list_detail(&record);
        insert_audit(
            &mut tx,
            &checks::audit(None, HOT_LIST_ADDED, &entry.listed_by, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn remove_hot_list_entry(
        &self,
        plate: &str,
        removed_by: &str,
    ) -> Result<Option<HotListRecord>, StoreError> {
        let now = now_millis();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(row) = sqlx::query(
            "UPDATE hot_list SET removed_at = ?, removed_by = ? \
             WHERE plate = ? AND removed_at IS NULL \
             RETURNING id, plate, reason, note, listed_at, listed_by, removed_at, removed_by",
        )
        .bind(ms(now))
        .bind(removed_by)
        .bind(plate)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let record = hot_list_from_row(&row)?;
        let detail = checks::hot_list_detail(&record);
        insert_audit(
            &mut tx,
            &checks::audit(None, HOT_LIST_REMOVED, removed_by, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    async fn hot_list(&self) -> Result<Vec<HotListRecord>, StoreError> {
        sqlx::query(
            "SELECT id, plate, reason, note, listed_at, listed_by, removed_at, removed_by \
             FROM hot_list WHERE removed_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(hot_list_from_row)
        .collect()
    }

    async fn raise_alert(&self, alert: &NewAlert) -> Result<AlertRaised, StoreError> {
        let now = now_millis();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let raised: Option<i64> = sqlx::query_scalar(
            "INSERT INTO alerts (case_id, kind, detail, raised_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (case_id, kind) DO NOTHING RETURNING id",
        )
        .bind(alert.case_id.0)
        .bind(alert.kind.as_str())
        .bind(alert.detail.to_string())
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = raised else {
            let first: i64 =
                sqlx::query_scalar("SELECT id FROM alerts WHERE case_id = ? AND kind = ?")
                    .bind(alert.case_id.0)
                    .bind(alert.kind.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            return Ok(AlertRaised::AlreadyRaised(first));
        };
        let detail = checks::alert_detail(id, alert.kind, &alert.detail);
        insert_audit(
            &mut tx,
            &checks::audit(
                Some(alert.case_id),
                ALERT_RAISED,
                &alert.raised_by,
                &detail,
                now,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(AlertRaised::Raised(id))
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let case = query.case_id.map(|c| c.0);
        sqlx::query(alert_select!(
            "WHERE id > ? AND (? = 0 OR acknowledged_at IS NULL) \
             AND (? IS NULL OR case_id = ?) ORDER BY id LIMIT ?"
        ))
        .bind(query.after.unwrap_or(0))
        .bind(query.open_only)
        .bind(case)
        .bind(case)
        .bind(i64::from(query.limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(alert_from_row)
        .collect()
    }

    async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        sqlx::query(alert_select!("WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(alert_from_row)
            .transpose()
    }

    async fn acknowledge_alert(
        &self,
        id: i64,
        acknowledged_by: &str,
    ) -> Result<AlertAcknowledged, StoreError> {
        let now = now_millis();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let updated = sqlx::query(
            "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? \
             WHERE id = ? AND acknowledged_at IS NULL \
             RETURNING id, case_id, kind, detail, raised_at, acknowledged_by, acknowledged_at",
        )
        .bind(acknowledged_by)
        .bind(ms(now))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = updated else {
            let current = sqlx::query(alert_select!("WHERE id = ?"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Ok(match current {
                Some(row) => AlertAcknowledged::Already(alert_from_row(&row)?),
                None => AlertAcknowledged::NotFound,
            });
        };
        let record = alert_from_row(&row)?;
        let detail = serde_json::json!({ "alert_id": record.id, "kind": record.kind }).to_string();
        insert_audit(
            &mut tx,
            &checks::audit(
                Some(record.case_id),
                ALERT_ACKNOWLEDGED,
                acknowledged_by,
                &detail,
                now,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(AlertAcknowledged::Acknowledged(record))
    }

    async fn plate_sightings(
        &self,
        query: &SightingsQuery<'_>,
    ) -> Result<Vec<PlateSighting>, StoreError> {
        read_sightings(&self.reader, query).await
    }

    async fn pass_checks(
        &self,
        worker: &str,
        case_id: CaseId,
        plate: &str,
        query: &SightingsQuery<'_>,
        still_clear: &(dyn for<'s> Fn(&'s [PlateSighting]) -> Option<String> + Send + Sync),
    ) -> Result<ChecksPassed, StoreError> {
        checks::check_spellings(query)?;
        let now = now_millis();
        let actor = stages::actor(worker);
        // The one writer, taken before the read: every mark committed so far is seen,
        // and none can be committed until this one is decided (one lock for all plates).
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let sightings = read_sightings(&mut *tx, query).await?;
        if let Some(reason) = still_clear(&sightings) {
            tx.rollback().await?;
            return Ok(ChecksPassed::Conflict(reason));
        }
        let marked = sqlx::query(
            "UPDATE cases SET checks_passed_at = ? \
             WHERE id = ? AND state = 'approved' AND stage_worker = ?",
        )
        .bind(ms(now))
        .bind(case_id.0)
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked == 0 {
            tx.rollback().await?;
            return Ok(ChecksPassed::LeaseLost);
        }
        let detail = checks::checks_passed_detail(plate);
        insert_audit(
            &mut tx,
            &checks::audit(Some(case_id), CHECKS_PASSED, &actor, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(ChecksPassed::Passed)
    }
}
