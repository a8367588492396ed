//! Officers' filings on PostgreSQL: each write one transaction with its audit rows;
//! an accident's move is a compare-and-set on its state.

use async_trait::async_trait;
use kozomol_core::{CaseId, CaseState, ReportedPlace};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::accidents::{
    self, decode_named, AccidentFileRecord, AccidentFileRole, AccidentMove, AccidentMoveRecord,
    AccidentMoved, AccidentOutcome, AccidentParticipant, AccidentQuery, AccidentRecord,
    AccidentRegistered, AccidentState, AccidentSummary, AccidentVehicle, Injury, NewAccident,
    NewOfficerViolation, OfficerFiled, ParticipantRole, ACCIDENT_MOVED, ACCIDENT_REGISTERED,
    OFFICER_FILED,
};
use crate::postgres::{location_from_row, PgStore};
use crate::postgres_recognition::{insert_audit, insert_blobs};
use crate::recognition::audit_row;
use crate::{decode, AttachmentRecord, OfficerFilings, StoreError};

fn opt_named<T>(
    parse: fn(&str) -> Option<T>,
    raw: Option<String>,
    what: &str,
) -> Result<Option<T>, StoreError> {
    raw.map(|r| decode_named(parse, &r, what)).transpose()
}

fn summary_from_row(row: &PgRow) -> Result<AccidentSummary, StoreError> {
    Ok(AccidentSummary {
        id: row.try_get("id")?,
        occurred_at: row.try_get("occurred_at")?,
        address: row.try_get("address")?,
        state: decode_named(
            AccidentState::parse,
            row.try_get("state")?,
            "accident state",
        )?,
        outcome: opt_named(
            AccidentOutcome::parse,
            row.try_get("outcome")?,
            "accident outcome",
        )?,
        registered_by: row.try_get("registered_by")?,
        registered_at: row.try_get("registered_at")?,
    })
}

async fn accident_by_id(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<AccidentRecord>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT id, report_id, occurred_at, address, lat_e6, lon_e6, description, state, \
         outcome, registered_by, registered_at, evidence_destroyed_at FROM accidents WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let summary = summary_from_row(&row)?;
    let vehicles = sqlx::query(
        "SELECT plate, make, model, damage FROM accident_vehicles WHERE accident_id = $1 \
         ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|v| {
        Ok(AccidentVehicle {
            plate: v.try_get("plate")?,
            make: v.try_get("make")?,
            model: v.try_get("model")?,
            damage: v.try_get("damage")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let participants = sqlx::query(
        "SELECT name, role, vehicle, pin, injury FROM accident_participants \
         WHERE accident_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|p| {
        Ok(AccidentParticipant {
            name: p.try_get("name")?,
            role: decode_named(
                ParticipantRole::parse,
                p.try_get("role")?,
                "participant role",
            )?,
            vehicle: p
                .try_get::<Option<i64>, _>("vehicle")?
                .map(|v| decode::u32_of(v, "participant vehicle"))
                .transpose()?,
            pin: p.try_get("pin")?,
            injury: decode_named(Injury::parse, p.try_get("injury")?, "injury")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let files = sqlx::query(
        "SELECT f.position, f.role, f.name, f.content_type, f.sha256, b.segment, \
         b.byte_offset, b.byte_len FROM accident_files f \
         JOIN evidence_blobs b ON b.sha256 = f.sha256 WHERE f.accident_id = $1 \
         ORDER BY f.position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|f| {
        Ok(AccidentFileRecord {
            role: decode_named(AccidentFileRole::parse, f.try_get("role")?, "file role")?,
            file: AttachmentRecord {
                position: decode::u32_of(f.try_get("position")?, "file position")?,
                name: f.try_get("name")?,
                content_type: f.try_get("content_type")?,
                sha256: decode::hash32(&f.try_get::<Vec<u8>, _>("sha256")?, "accident file")?,
                location: location_from_row(f)?,
            },
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let cases = sqlx::query_scalar::<_, i64>(
        "SELECT case_id FROM officer_filings WHERE accident_id = $1 ORDER BY case_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(CaseId)
    .collect();
    let moves = sqlx::query(
        "SELECT id, from_state, to_state, outcome, actor, note, at FROM accident_moves \
         WHERE accident_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|m| {
        Ok(AccidentMoveRecord {
            id: m.try_get("id")?,
            from_state: opt_named(AccidentState::parse, m.try_get("from_state")?, "state")?,
            to_state: decode_named(AccidentState::parse, m.try_get("to_state")?, "state")?,
            outcome: opt_named(AccidentOutcome::parse, m.try_get("outcome")?, "outcome")?,
            actor: m.try_get("actor")?,
            note: m.try_get("note")?,
            at: m.try_get("at")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(AccidentRecord {
        id,
        report_id: row.try_get("report_id")?,
        occurred_at: summary.occurred_at,
        place: ReportedPlace {
            address: summary.address,
            lat_e6: row.try_get("lat_e6")?,
            lon_e6: row.try_get("lon_e6")?,
        },
        description: row.try_get("description")?,
        state: summary.state,
        outcome: summary.outcome,
        registered_by: summary.registered_by,
        registered_at: summary.registered_at,
        vehicles,
        participants,
        files,
        cases,
        moves,
        evidence_destroyed_at: row.try_get("evidence_destroyed_at")?,
    }))
}

/// Writes a move's history row and its audit row.
async fn record_move(
    tx: &mut PgConnection,
    id: i64,
    from: Option<AccidentState>,
    to: AccidentState,
    outcome: Option<AccidentOutcome>,
    actor: &str,
    note: Option<&str>,
) -> Result<(), StoreError> {
    let now = crate::audit::now_millis();
    sqlx::query(
        "INSERT INTO accident_moves (accident_id, from_state, to_state, outcome, actor, note, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(from.map(AccidentState::as_str))
    .bind(to.as_str())
    .bind(outcome.map(AccidentOutcome::as_str))
    .bind(actor)
    .bind(note)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let detail = accidents::move_detail(id, from, to, outcome, note);
    let action = if from.is_none() {
        ACCIDENT_REGISTERED
    } else {
        ACCIDENT_MOVED
    };
    insert_audit(
        tx,
        &audit_row(None, action, None, None, actor, &detail, now),
    )
    .await
}

#[async_trait]
impl OfficerFilings for PgStore {
    async fn file_officer_violation(
        &self,
        filing: &NewOfficerViolation,
    ) -> Result<OfficerFiled, StoreError> {
        accidents::check_officer_violation(filing)?;
        let report = &filing.report;
        let (event, fingerprint) = accidents::report_event(report)?;
        let now = crate::audit::now_millis();
        let mut tx = self.pool.begin().await?;
        let earlier = sqlx::query(
            "SELECT id, fingerprint FROM cases WHERE camera_id IS NULL AND event_id = $1",
        )
        .bind(report.report_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = earlier {
            let id = CaseId(row.try_get("id")?);
            let same = row.try_get::<Vec<u8>, _>("fingerprint")? == fingerprint;
            return Ok(if same {
                OfficerFiled::Duplicate(id)
            } else {
                OfficerFiled::Conflict(id)
            });
        }
        if let Some(accident) = report.accident_id {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM accidents WHERE id = $1 FOR SHARE")
                    .bind(accident)
                    .fetch_optional(&mut *tx)
                    .await?;
            match state.as_deref() {
                None => return Ok(OfficerFiled::AccidentNotFound),
                Some("closed") => return Ok(OfficerFiled::AccidentClosed),
                Some(_) => {}
            }
        }
        // The officer is the witness: the plate he read is the decided plate, and the
        // case needs no machine reading or review.
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO cases (event_id, camera_id, captured_at, received_at, kind, state, \
             plate, decided_plate, enforceable, enforceability_note, fingerprint, event) \
             VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, TRUE, NULL, $8, $9::jsonb) RETURNING id",
        )
        .bind(report.report_id)
        .bind(report.occurred_at)
        .bind(now)
        .bind(report.kind.as_str())
        .bind(CaseState::Approved.as_str())
        .bind(&report.plate)
        .bind(&report.plate)
        .bind(&fingerprint[..])
        .bind(&event)
        .fetch_one(&mut *tx)
        .await?;
        let photos: Vec<_> = filing
            .photos
            .iter()
            .map(|photo| (&photo.sha256, &photo.location))
            .collect();
        insert_blobs(&mut tx, &photos).await?;
        for (idx, photo) in filing.photos.iter().enumerate() {
            sqlx::query(
                "INSERT INTO case_frames (case_id, idx, role, sha256) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(idx as i64)
            .bind(photo.role.as_str())
            .bind(&photo.sha256[..])
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO officer_filings (case_id, officer, accident_id, filed_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&report.officer)
        .bind(report.accident_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let detail = accidents::filing_detail(report);
        insert_audit(
            &mut tx,
            &audit_row(
                CaseId(id),
                OFFICER_FILED,
                None,
                Some(CaseState::Approved),
                &report.officer,
                &detail,
                now,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(OfficerFiled::Filed(CaseId(id)))
    }

    async fn register_accident(
        &self,
        accident: &NewAccident,
    ) -> Result<AccidentRegistered, StoreError> {
        accidents::check_accident(accident)?;
        let now = crate::audit::now_millis();
        let mut tx = self.pool.begin().await?;
        let earlier: Option<i64> =
            sqlx::query_scalar("SELECT id FROM accidents WHERE report_id = $1")
                .bind(accident.report_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = earlier {
            return Ok(AccidentRegistered::Duplicate(id));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accidents (report_id, occurred_at, address, lat_e6, lon_e6, \
             description, state, registered_by, registered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'registered', $7, $8) RETURNING id",
        )
        .bind(accident.report_id)
        .bind(accident.occurred_at)
        .bind(&accident.place.address)
        .bind(accident.place.lat_e6)
        .bind(accident.place.lon_e6)
        .bind(&accident.description)
        .bind(&accident.registered_by)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        for (position, v) in accident.vehicles.iter().enumerate() {
            sqlx::query(
                "INSERT INTO accident_vehicles (accident_id, position, plate, make, model, \
                 damage) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(position as i64)
            .bind(&v.plate)
            .bind(v.make.as_deref())
            .bind(v.model.as_deref())
            .bind(&v.damage)
            .execute(&mut *tx)
            .await?;
        }
        for (position, p) in accident.participants.iter().enumerate() {
            sqlx::query(
                "INSERT INTO accident_participants (accident_id, position, name, role, \
                 vehicle, pin, injury) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(position as i64)
            .bind(&p.name)
            .bind(p.role.as_str())
            .bind(p.vehicle.map(i64::from))
            .bind(p.pin.as_deref())
            .bind(p.injury.as_str())
            .execute(&mut *tx)
            .await?;
        }
        let files: Vec<_> = accident
            .files
            .iter()
            .map(|f| (&f.file.evidence.sha256, &f.file.evidence.location))
            .collect();
        insert_blobs(&mut tx, &files).await?;
        for (position, f) in accident.files.iter().enumerate() {
            sqlx::query(
                "INSERT INTO accident_files (accident_id, position, role, name, content_type, \
                 sha256) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(position as i64)
            .bind(f.role.as_str())
            .bind(&f.file.name)
            .bind(&f.file.content_type)
            .bind(&f.file.evidence.sha256[..])
            .execute(&mut *tx)
            .await?;
        }
        record_move(
            &mut tx,
            id,
            None,
            AccidentState::Registered,
            None,
            &accident.registered_by,
            None,
        )
        .await?;
        let record = accident_by_id(&mut tx, id).await?;
        tx.commit().await?;
        record
            .map(|r| AccidentRegistered::Registered(Box::new(r)))
            .ok_or_else(|| crate::error::corrupt(format!("accident {id} vanished")))
    }

    async fn accident(&self, id: i64) -> Result<Option<AccidentRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        accident_by_id(&mut conn, id).await
    }

    async fn accidents(&self, query: &AccidentQuery) -> Result<Vec<AccidentSummary>, StoreError> {
        sqlx::query(
            "SELECT id, occurred_at, address, state, outcome, registered_by, registered_at \
             FROM accidents WHERE id > $1 AND ($2::text IS NULL OR state = $2) ORDER BY id LIMIT $3",
        )
        .bind(query.after.unwrap_or(0))
        .bind(query.state.map(AccidentState::as_str))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(summary_from_row)
        .collect()
    }

    async fn move_accident(&self, step: &AccidentMove) -> Result<AccidentMoved, StoreError> {
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE accidents SET state = $1, outcome = $2 WHERE id = $3 AND state = $4",
        )
        .bind(step.to.as_str())
        .bind(step.outcome.map(AccidentOutcome::as_str))
        .bind(step.accident_id)
        .bind(step.from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            let now: Option<String> =
                sqlx::query_scalar("SELECT state FROM accidents WHERE id = $1")
                    .bind(step.accident_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return match now {
                None => Ok(AccidentMoved::NotFound),
                Some(raw) => Ok(AccidentMoved::StateChanged(decode_named(
                    AccidentState::parse,
                    &raw,
                    "accident state",
                )?)),
            };
        }
        record_move(
            &mut tx,
            step.accident_id,
            Some(step.from),
            step.to,
            step.outcome,
            &step.actor,
            step.note.as_deref(),
        )
        .await?;
        let record = accident_by_id(&mut tx, step.accident_id).await?;
        tx.commit().await?;
        Ok(record.map_or(AccidentMoved::NotFound, |r| {
            AccidentMoved::Moved(Box::new(r))
        }))
    }
}
