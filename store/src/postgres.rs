//! The PostgreSQL store: production. Batches are multi-row statements inside one
//! transaction at READ COMMITTED; look-ups by many keys bind one array (`= ANY($1)`).
//! Rows of a batch are inserted in key order, so two ingest processes writing
//! overlapping batches wait for each other instead of deadlocking.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{CalibrationCertificate, CameraId, CaseId, CaseState, EventId, Site};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};
use tracing::debug;
use uuid::Uuid;

use crate::accounts::{
    self, account_columns, AccountChange, AccountChanged, CheckedAccount, CredentialStored,
    ACCOUNT_CHANGED,
};
use crate::audit::{now_millis, whole_millis, AuditRow};
use crate::batch::{self, BatchPlan, CaseKey, CreatedRows};
use crate::checks;
use crate::error::{corrupt, db_error};
use crate::postgres_recognition::insert_audit;
use crate::{
    decode, Account, AccountId, AccountStore, Allowance, AuditEntry, AuditSeal, AuditTrail,
    Backend, Backlog, CameraRecord, CameraRegister, CameraRegistration, CameraStatusUpdate,
    CaseFrame, CaseQuery, CaseRecord, CaseStore, CaseSummary, CaseWrite, DeadLetter,
    DeadLetterStore, FrameLocation, HourlyCount, NewAccount, NewAuditEntry, NewCase, NewDeadLetter,
    OfficerIdentity, Store, StoreError, WorkSummary, ACCOUNT_CREATED, OFFICER_REGISTERED,
};

/// The wire protocol counts bind parameters in 16 bits.
const MAX_BINDS: usize = 65_535;
const MAX_ROWS: usize = 1_000;
const MAX_CONNECTIONS: u32 = 8;
/// A pooled connection idle this long is pinged before it is handed out (a database
/// restart leaves idle ones dead); one in steady use is not. sqlx's default pings on
/// every acquire, a round trip on each statement's path (it pings again on release,
/// off that path, and closes a connection that fails).
const PING_IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) struct PgStore {
    pub(crate) pool: PgPool,
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        crate::migrate::postgres(&pool).await?;
        debug!("postgres store open");
        Ok(PgStore { pool })
    }
}

pub(crate) fn rows_per_statement(columns: usize) -> usize {
    batch::rows_per_statement(columns, MAX_BINDS, MAX_ROWS)
}

impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }
}

fn certificate_from_row(row: &PgRow) -> Result<(String, CalibrationCertificate), StoreError> {
    Ok((
        row.try_get("device_serial")?,
        CalibrationCertificate {
            number: row.try_get("number")?,
            valid_from: row.try_get::<NaiveDate, _>("valid_from")?,
            valid_until: row.try_get::<NaiveDate, _>("valid_until")?,
        },
    ))
}

fn camera_from_row(
    row: &PgRow,
    certificates: Vec<CalibrationCertificate>,
) -> Result<CameraRecord, StoreError> {
    let key: Vec<u8> = row.try_get("public_key")?;
    let lane: i16 = row.try_get("site_lane")?;
    Ok(CameraRecord {
        camera_id: decode::camera_id(row.try_get("camera_id")?)?,
        public_key: decode::hash32(&key, "public key")?,
        device_serial: row.try_get("device_serial")?,
        certificates,
        site: Site {
            id: row.try_get("site_id")?,
            lat_e6: row.try_get("site_lat_e6")?,
            lon_e6: row.try_get("site_lon_e6")?,
            address: row.try_get("site_address")?,
            direction: row.try_get("site_direction")?,
            lane: decode::u8_of(i64::from(lane), "lane")?,
        },
        registered_at: row.try_get("registered_at")?,
        last_seen: row.try_get("last_seen")?,
        online: row.try_get("online")?,
        outbox_depth: row.try_get("outbox_depth")?,
        clock_offset_ms: row.try_get("clock_offset_ms")?,
        status_at: row.try_get("status_at")?,
        online_heard_at: row.try_get("online_heard_at")?,
    })
}

/// The camera columns; a macro because `query()` takes only `&'static str`.
macro_rules! select_cameras {
    ($tail:literal) => {
        concat!(
            "SELECT camera_id, public_key, device_serial, site_id, site_lat_e6, site_lon_e6, ",
            "site_address, site_direction, site_lane, registered_at, last_seen, online, ",
            "outbox_depth, clock_offset_ms, status_at, online_heard_at FROM cameras",
            $tail
        )
    };
}

/// Ends a transaction that took row locks and changed nothing, answering `answer`.
/// Rolled back now, not when the dropped transaction's connection is next used: until
/// then its locks stay held, and a claim that skips locked rows (`SKIP LOCKED`) would
/// pass the case over.
pub(crate) async fn finish_unchanged<T>(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    answer: Result<T, StoreError>,
) -> Result<T, StoreError> {
    tx.rollback().await?;
    answer
}

#[async_trait]
impl CameraRegister for PgStore {
    async fn register_camera(&self, camera: &CameraRegistration) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO cameras (camera_id, public_key, device_serial, site_id, site_lat_e6, \
             site_lon_e6, site_address, site_direction, site_lane, registered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now()) \
             ON CONFLICT (camera_id) DO UPDATE SET public_key = excluded.public_key, \
             device_serial = excluded.device_serial, site_id = excluded.site_id, \
             site_lat_e6 = excluded.site_lat_e6, site_lon_e6 = excluded.site_lon_e6, \
             site_address = excluded.site_address, site_direction = excluded.site_direction, \
             site_lane = excluded.site_lane",
        )
        .bind(camera.camera_id.as_str())
        .bind(&camera.public_key[..])
        .bind(&camera.device_serial)
        .bind(&camera.site.id)
        .bind(camera.site.lat_e6)
        .bind(camera.site.lon_e6)
        .bind(&camera.site.address)
        .bind(&camera.site.direction)
        .bind(i16::from(camera.site.lane))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO calibration_certificates (device_serial, number, valid_from, valid_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (device_serial, number) DO UPDATE SET \
             valid_from = excluded.valid_from, valid_until = excluded.valid_until",
        )
        .bind(&camera.device_serial)
        .bind(&camera.certificate.number)
        .bind(camera.certificate.valid_from)
        .bind(camera.certificate.valid_until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn camera(&self, id: &CameraId) -> Result<Option<CameraRecord>, StoreError> {
        let Some(row) = sqlx::query(select_cameras!(" WHERE camera_id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let serial: String = row.try_get("device_serial")?;
        let certificates = sqlx::query(
            "SELECT device_serial, number, valid_from, valid_until FROM calibration_certificates \
             WHERE device_serial = $1 ORDER BY valid_from, number",
        )
        .bind(&serial)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| certificate_from_row(r).map(|(_, c)| c))
        .collect::<Result<_, _>>()?;
        camera_from_row(&row, certificates).map(Some)
    }

    async fn cameras(&self) -> Result<Vec<CameraRecord>, StoreError> {
        let rows = sqlx::query(select_cameras!(" ORDER BY camera_id"))
            .fetch_all(&self.pool)
            .await?;
        let mut by_device: HashMap<String, Vec<CalibrationCertificate>> = HashMap::new();
        for row in sqlx::query(
            "SELECT device_serial, number, valid_from, valid_until FROM calibration_certificates \
             ORDER BY device_serial, valid_from, number",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let (serial, cert) = certificate_from_row(&row)?;
            by_device.entry(serial).or_default().push(cert);
        }
        rows.iter()
            .map(|row| {
                let serial: String = row.try_get("device_serial")?;
                camera_from_row(row, by_device.get(&serial).cloned().unwrap_or_default())
            })
            .collect()
    }

    async fn record_camera_status(
        &self,
        id: &CameraId,
        status: &CameraStatusUpdate,
    ) -> Result<(), StoreError> {
        // A retained status can arrive after a newer one; the newest wins (see
        // `CameraStatusUpdate::at` for a status with no time).
        sqlx::query(
            "UPDATE cameras SET online = $1, outbox_depth = $2, clock_offset_ms = $3, \
             status_at = COALESCE($4, CASE WHEN online = $1 AND status_at IS NOT NULL THEN status_at \
             ELSE GREATEST(status_at + interval '1 millisecond', $5) END), \
             online_heard_at = CASE WHEN $1 THEN $5 ELSE online_heard_at END \
             WHERE camera_id = $6 AND ($4::timestamptz IS NULL OR status_at IS NULL OR status_at <= $4)",
        )
        .bind(status.online)
        .bind(status.outbox_depth)
        .bind(status.clock_offset_ms)
        .bind(status.at.map(whole_millis))
        .bind(whole_millis(status.received_at))
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl CaseStore for PgStore {
    async fn record_cases(
        &self,
        cases: &[NewCase],
        actor: &str,
    ) -> Result<Vec<CaseWrite>, StoreError> {
        if cases.is_empty() {
            return Ok(Vec::new());
        }
        let plan = BatchPlan::new(cases);
        let now = now_millis();
        let cameras: Vec<&str> = batch::cameras_of(cases);
        let mut tx = self.pool.begin().await?;

        let registered: Vec<String> =
            sqlx::query_scalar("SELECT camera_id FROM cameras WHERE camera_id = ANY($1)")
                .bind(&cameras)
                .fetch_all(&mut *tx)
                .await?;
        if let Some(unknown) = batch::first_unregistered(&cameras, &registered) {
            return Err(StoreError::UnknownCamera(unknown));
        }

        let mut created: HashMap<CaseKey, CaseId> = HashMap::with_capacity(cases.len());
        let candidates: Vec<&NewCase> = plan.candidates.iter().map(|&i| &cases[i]).collect();
        let events: Vec<String> = candidates.iter().map(|c| c.event.to_string()).collect();
        let inserted = sqlx::query(
            "INSERT INTO cases (event_id, camera_id, captured_at, received_at, kind, state, \
             plate, enforceable, enforceability_note, fingerprint, event, trace_parent) \
             SELECT event_id, camera_id, captured_at, $4, kind, $5, plate, enforceable, note, \
             fingerprint, event::jsonb, trace_parent \
             FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $6::text[], $7::text[], \
             $8::boolean[], $9::text[], $10::bytea[], $11::text[], $12::text[]) WITH ORDINALITY \
             AS t (event_id, camera_id, captured_at, kind, plate, enforceable, note, \
             fingerprint, event, trace_parent, n) ORDER BY n \
             ON CONFLICT (camera_id, event_id) DO NOTHING RETURNING id, camera_id, event_id",
        )
        .bind(candidates.iter().map(|c| c.event_id.0).collect::<Vec<_>>())
        .bind(
            candidates
                .iter()
                .map(|c| c.camera_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(candidates.iter().map(|c| c.captured_at).collect::<Vec<_>>())
        .bind(now)
        .bind(CaseState::Received.as_str())
        .bind(
            candidates
                .iter()
                .map(|c| c.kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            candidates
                .iter()
                .map(|c| c.camera_plate.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(candidates.iter().map(|c| c.enforceable).collect::<Vec<_>>())
        .bind(
            candidates
                .iter()
                .map(|c| c.enforceability_note.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            candidates
                .iter()
                .map(|c| &c.fingerprint[..])
                .collect::<Vec<_>>(),
        )
        .bind(&events)
        .bind(
            candidates
                .iter()
                .map(|c| c.trace_parent.map(|t| t.to_string()))
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in inserted {
            let key = (
                row.try_get::<String, _>("camera_id")?,
                row.try_get::<Uuid, _>("event_id")?,
            );
            created.insert(key, CaseId(row.try_get("id")?));
        }

        let (missing_cameras, missing_events): (Vec<&str>, Vec<Uuid>) = plan
            .not_created(cases, &created)
            .map(|case| (case.camera_id.as_str(), case.event_id.0))
            .unzip();
        let mut existing: HashMap<CaseKey, (CaseId, [u8; 32])> = HashMap::new();
        if !missing_events.is_empty() {
            for row in sqlx::query(
                "SELECT c.id, c.camera_id, c.event_id, c.fingerprint FROM cases c \
                 JOIN UNNEST($1::text[], $2::uuid[]) AS k (camera_id, event_id) \
                 ON c.camera_id = k.camera_id AND c.event_id = k.event_id",
            )
            .bind(&missing_cameras)
            .bind(&missing_events)
            .fetch_all(&mut *tx)
            .await?
            {
                let key = (
                    row.try_get::<String, _>("camera_id")?,
                    row.try_get::<Uuid, _>("event_id")?,
                );
                let fingerprint: Vec<u8> = row.try_get("fingerprint")?;
                existing.insert(
                    key,
                    (
                        CaseId(row.try_get("id")?),
                        decode::hash32(&fingerprint, "fingerprint")?,
                    ),
                );
            }
        }
        let writes = plan.resolve(cases, &created, &existing)?;

        let rows = CreatedRows::new(cases, &created, actor, now);
        let unkept = crate::destruction::stored_again(&rows.unkept);
        // Most batches have nothing unkept: their one sorted upsert below is their only
        // run of blob locks.
        if !unkept.is_empty() {
            crate::postgres_recognition::lock_blob_rows(&mut tx, &[&rows.stored, &unkept]).await?;
        }
        if !rows.stored.is_empty() {
            crate::postgres_recognition::insert_blobs(&mut tx, &rows.stored).await?;
            // A frame ingest found stored may have been erased since: not recorded, so
            // that ingest, trying again, stores its bytes anew.
            let erased: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT sha256 FROM evidence_blobs \
                 WHERE erased_at IS NOT NULL AND sha256 = ANY($1) LIMIT 1",
            )
            .bind(
                rows.stored
                    .iter()
                    .map(|(sha, _)| &sha[..])
                    .collect::<Vec<_>>(),
            )
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(sha) = erased {
                return Err(StoreError::EvidenceErased {
                    sha256: hex::encode(sha),
                });
            }
        }
        // After the blobs: a duplicate's frame may be a copy of one this batch stored.
        crate::postgres_recognition::record_unkept_locked(&mut tx, &unkept).await?;
        if !rows.frames.is_empty() {
            sqlx::query(
                "INSERT INTO case_frames (case_id, idx, role, sha256) \
                 SELECT * FROM UNNEST($1::bigint[], $2::integer[], $3::text[], $4::bytea[])",
            )
            .bind(rows.frames.iter().map(|f| f.0 .0).collect::<Vec<_>>())
            .bind(rows.frames.iter().map(|f| f.1).collect::<Vec<_>>())
            .bind(rows.frames.iter().map(|f| f.2).collect::<Vec<_>>())
            .bind(rows.frames.iter().map(|f| &f.3[..]).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if !rows.audit.is_empty() {
            // Ordered so the ids follow the chain.
            let audit: Vec<&AuditRow<'_>> = rows.audit.iter().map(|a| &a.row).collect();
            sqlx::query(
                "INSERT INTO audit_log (batch_id, case_id, at, actor, action, from_state, \
                 to_state, detail, prev_hash, hash) \
                 SELECT batch_id, case_id, at, actor, action, from_state, to_state, detail, \
                 prev_hash, hash FROM UNNEST($1::uuid[], $2::bigint[], $3::timestamptz[], \
                 $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], \
                 $10::bytea[]) WITH ORDINALITY AS t (batch_id, case_id, at, actor, action, \
                 from_state, to_state, detail, prev_hash, hash, n) ORDER BY n",
            )
            .bind(audit.iter().map(|r| r.batch_id).collect::<Vec<_>>())
            .bind(
                audit
                    .iter()
                    .map(|r| r.case_id.map(|id| id.0))
                    .collect::<Vec<_>>(),
            )
            .bind(audit.iter().map(|r| r.at).collect::<Vec<_>>())
            .bind(audit.iter().map(|r| r.actor).collect::<Vec<_>>())
            .bind(audit.iter().map(|r| r.action).collect::<Vec<_>>())
            .bind(
                audit
                    .iter()
                    .map(|r| r.from_state.map(CaseState::as_str))
                    .collect::<Vec<_>>(),
            )
            .bind(
                audit
                    .iter()
                    .map(|r| r.to_state.map(CaseState::as_str))
                    .collect::<Vec<_>>(),
            )
            .bind(audit.iter().map(|r| r.detail).collect::<Vec<_>>())
            .bind(
                rows.audit
                    .iter()
                    .map(|a| &a.prev_hash[..])
                    .collect::<Vec<_>>(),
            )
            .bind(rows.audit.iter().map(|a| &a.hash[..]).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        // Row locks in camera-id order: an UPDATE over `ANY` takes them in scan
        // order, which differs between transactions and deadlocks two batches.
        sqlx::query(
            "UPDATE cameras SET last_seen = $1 WHERE camera_id IN \
             (SELECT camera_id FROM cameras WHERE camera_id = ANY($2) \
             ORDER BY camera_id FOR NO KEY UPDATE)",
        )
        .bind(now)
        .bind(&cameras)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        debug!(
            cases = cases.len(),
            created = created.len(),
            "postgres case batch committed"
        );
        Ok(writes)
    }

    async fn case(&self, id: CaseId) -> Result<Option<CaseRecord>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, event_id, camera_id, captured_at, received_at, kind, state, plate, \
             enforceable, enforceability_note, fingerprint, event, personal_data_purged_at, \
             evidence_destroyed_at \
             FROM cases WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let frames = sqlx::query(
            "SELECT f.idx, f.role, f.sha256, b.segment, b.byte_offset, b.byte_len \
             FROM case_frames f JOIN evidence_blobs b ON b.sha256 = f.sha256 \
             WHERE f.case_id = $1 ORDER BY f.idx",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(frame_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let summary = summary_from_row(&row)?;
        let fingerprint: Vec<u8> = row.try_get("fingerprint")?;
        let Json(event) = row.try_get::<Json<serde_json::Value>, _>("event")?;
        Ok(Some(CaseRecord {
            id: summary.id,
            event_id: summary.event_id,
            camera_id: summary.camera_id,
            captured_at: summary.captured_at,
            received_at: summary.received_at,
            kind: summary.kind,
            state: summary.state,
            plate: summary.plate,
            enforceable: summary.enforceable,
            enforceability_note: row.try_get("enforceability_note")?,
            fingerprint: decode::hash32(&fingerprint, "fingerprint")?,
            event,
            frames,
            personal_data_purged_at: row.try_get("personal_data_purged_at")?,
            evidence_destroyed_at: row.try_get("evidence_destroyed_at")?,
        }))
    }

    async fn work_summary(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<WorkSummary, StoreError> {
        let tiers = sqlx::query(
            "SELECT r.tier, count(*) AS n, \
             avg(extract(epoch FROM (r.decided_at - c.received_at)))::float8 AS mean_s \
             FROM reviews r JOIN cases c ON c.id = r.case_id \
             WHERE r.decided_at >= $1 AND r.decided_at < $2 GROUP BY r.tier ORDER BY r.tier",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut summary = WorkSummary::of_tiers(
            tiers
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get("tier")?,
                        row.try_get("n")?,
                        row.try_get("mean_s")?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?,
        );
        let issued = sqlx::query(
            "SELECT count(*) AS issued, coalesce(sum(amount_minor), 0)::bigint AS issued_minor \
             FROM resolutions WHERE issued_at >= $1 AND issued_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        summary.issued = issued.try_get("issued")?;
        summary.issued_minor = issued.try_get("issued_minor")?;
        summary.paid_minor = sqlx::query(
            "SELECT coalesce(sum(amount_minor - excess_minor), 0)::bigint AS paid_minor \
             FROM payments WHERE paid_at >= $1 AND paid_at < $2 AND reversed_at IS NULL",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?
        .try_get("paid_minor")?;
        Ok(summary)
    }

    async fn hourly_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourlyCount>, StoreError> {
        sqlx::query(
            "SELECT date_trunc('hour', c.captured_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, \
             c.event #>> '{site,id}' AS site_id, \
             max(c.event #>> '{site,address}') AS site_address, \
             max((c.event #>> '{site,lat_e6}')::bigint) AS site_lat_e6, \
             max((c.event #>> '{site,lon_e6}')::bigint) AS site_lon_e6, c.kind, \
             count(*) AS recorded, count(r.number) AS fined \
             FROM cases c LEFT JOIN resolutions r ON r.case_id = c.id \
             WHERE c.captured_at >= $1 AND c.captured_at < $2 \
             AND NOT EXISTS (SELECT 1 FROM nominations n WHERE n.reissued_case_id = c.id) \
             GROUP BY 1, 2, c.kind ORDER BY 1, 2, c.kind",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(HourlyCount {
                hour: row.try_get::<DateTime<Utc>, _>("hour")?,
                site: decode::counted_site(
                    row.try_get("site_id")?,
                    row.try_get("site_address")?,
                    row.try_get("site_lat_e6")?,
                    row.try_get("site_lon_e6")?,
                )?,
                kind: decode::kind(row.try_get("kind")?)?,
                recorded: row.try_get("recorded")?,
                fined: row.try_get("fined")?,
            })
        })
        .collect()
    }

    async fn cases(&self, query: &CaseQuery) -> Result<Vec<CaseSummary>, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new(
            "SELECT id, event_id, camera_id, captured_at, received_at, kind, state, plate, \
             enforceable FROM cases",
        );
        push_case_filter(&mut qb, query);
        if let Some(after) = query.after {
            qb.push(" AND id > ").push_bind(after.0);
        }
        qb.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(query.limit));
        qb.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(summary_from_row)
            .collect()
    }

    async fn count_cases(&self, query: &CaseQuery) -> Result<u64, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT COUNT(*) AS n FROM cases");
        push_case_filter(&mut qb, query);
        let n: i64 = qb.build().fetch_one(&self.pool).await?.try_get("n")?;
        u64::try_from(n).map_err(|_| corrupt(format!("count {n}")))
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        let waiting: Vec<&str> = CaseState::WAITING.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(
            "SELECT state, count(*) AS n, min(received_at) AS oldest FROM cases \
             WHERE state = ANY($1) GROUP BY state",
        )
        .bind(&waiting)
        .fetch_all(&self.pool)
        .await?;
        let mut found = HashMap::new();
        for row in &rows {
            let state = decode::state(row.try_get("state")?)?;
            let n: i64 = row.try_get("n")?;
            let oldest: Option<DateTime<Utc>> = row.try_get("oldest")?;
            found.insert(state, (n, oldest));
        }
        Ok(crate::model::backlog_of(found))
    }

    async fn known_frames(&self, sha256s: &[[u8; 32]]) -> Result<HashSet<[u8; 32]>, StoreError> {
        if sha256s.is_empty() {
            return Ok(HashSet::new());
        }
        let wanted: Vec<&[u8]> = sha256s.iter().map(|sha| &sha[..]).collect();
        // An erased blob is not known: its bytes must be stored again.
        sqlx::query(
            "SELECT sha256 FROM evidence_blobs WHERE sha256 = ANY($1) AND erased_at IS NULL",
        )
        .bind(&wanted)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let sha: Vec<u8> = row.try_get("sha256")?;
            decode::hash32(&sha, "evidence hash")
        })
        .collect()
    }

    async fn case_audit(&self, id: CaseId) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query(
            "SELECT id, batch_id, case_id, at, actor, action, from_state, to_state, detail, \
             prev_hash, hash FROM audit_log WHERE case_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_entry_from_row)
        .collect()
    }

    async fn trace_parents(
        &self,
        cases: &[CaseId],
    ) -> Result<HashMap<CaseId, kozomol_core::TraceParent>, StoreError> {
        if cases.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<i64> = cases.iter().map(|c| c.0).collect();
        let mut traces = HashMap::new();
        for row in sqlx::query(
            "SELECT id, trace_parent FROM cases WHERE id = ANY($1) AND trace_parent IS NOT NULL",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?
        {
            let (id, trace) = (row.try_get("id")?, row.try_get("trace_parent")?);
            if let Some(trace) = decode::trace_parent(CaseId(id), trace) {
                traces.insert(CaseId(id), trace);
            }
        }
        Ok(traces)
    }

    async fn case_places(
        &self,
        cases: &[CaseId],
    ) -> Result<HashMap<CaseId, crate::CasePlace>, StoreError> {
        if cases.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<i64> = cases.iter().map(|c| c.0).collect();
        let mut places = HashMap::new();
        for row in sqlx::query(concat!(
            "SELECT s.id, ",
            crate::model::postgres_place_columns!(),
            " FROM cases s WHERE s.id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?
        {
            if let Some(place) = case_place(&row)? {
                places.insert(CaseId(row.try_get("id")?), place);
            }
        }
        Ok(places)
    }
}

/// The [`crate::CasePlace`] of a row with `postgres_place_columns!()`.
pub(crate) fn case_place(row: &PgRow) -> Result<Option<crate::CasePlace>, StoreError> {
    Ok(match row.try_get::<Option<String>, _>("site_address")? {
        Some(address) => Some(crate::CasePlace {
            address,
            lat_e6: row.try_get("site_lat_e6")?,
            lon_e6: row.try_get("site_lon_e6")?,
        }),
        None => None,
    })
}

async fn audit_rows_in<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    after: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    sqlx::query(
        "SELECT id, batch_id, case_id, at, actor, action, from_state, to_state, detail, \
         prev_hash, hash FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?
    .iter()
    .map(audit_entry_from_row)
    .collect()
}

async fn audit_seals_in<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    after: i64,
    limit: u32,
) -> Result<Vec<AuditSeal>, StoreError> {
    sqlx::query(
        "SELECT id, up_to_id, row_count, prev_hash, hash, sealed_at FROM audit_seals \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?
    .iter()
    .map(audit_seal_from_row)
    .collect()
}

/// The audit log read inside one transaction, which reads one snapshot.
struct AuditSnapshotIn {
    tx: tokio::sync::Mutex<sqlx::Transaction<'static, sqlx::Postgres>>,
}

#[async_trait]
impl crate::AuditSnapshot for AuditSnapshotIn {
    async fn rows(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut tx = self.tx.lock().await;
        audit_rows_in(&mut **tx, after, limit).await
    }

    async fn seals(&self, after: i64, limit: u32) -> Result<Vec<AuditSeal>, StoreError> {
        let mut tx = self.tx.lock().await;
        audit_seals_in(&mut **tx, after, limit).await
    }
}

fn audit_entry_from_row(row: &PgRow) -> Result<AuditEntry, StoreError> {
    let prev_hash: Vec<u8> = row.try_get("prev_hash")?;
    let hash: Vec<u8> = row.try_get("hash")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        batch_id: row.try_get("batch_id")?,
        case_id: row.try_get::<Option<i64>, _>("case_id")?.map(CaseId),
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        from_state: decode::opt_state(row.try_get("from_state")?)?,
        to_state: decode::opt_state(row.try_get("to_state")?)?,
        detail: row.try_get("detail")?,
        prev_hash: hex::encode(prev_hash),
        hash: hex::encode(hash),
    })
}

fn hash32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| corrupt(format!("{what} is not 32 bytes")))
}

fn audit_seal_from_row(row: &PgRow) -> Result<AuditSeal, StoreError> {
    Ok(AuditSeal {
        id: row.try_get("id")?,
        up_to_id: row.try_get("up_to_id")?,
        rows: row.try_get("row_count")?,
        prev_hash: hex::encode(row.try_get::<Vec<u8>, _>("prev_hash")?),
        hash: hex::encode(row.try_get::<Vec<u8>, _>("hash")?),
        sealed_at: row.try_get("sealed_at")?,
    })
}

#[async_trait]
impl AuditTrail for PgStore {
    async fn record_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        let audit = crate::recognition::chained(AuditRow {
            batch_id: Uuid::now_v7(),
            case_id: entry.case_id,
            at: now_millis(),
            actor: &entry.actor,
            action: &entry.action,
            from_state: None,
            to_state: None,
            detail: entry.detail.as_deref(),
        });
        let mut conn = self.pool.acquire().await?;
        insert_audit(&mut conn, &audit).await
    }

    async fn audit_rows(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        audit_rows_in(&self.pool, after, limit).await
    }

    async fn audit_seals(&self, after: i64, limit: u32) -> Result<Vec<AuditSeal>, StoreError> {
        audit_seals_in(&self.pool, after, limit).await
    }

    async fn audit_snapshot(&self) -> Result<Box<dyn crate::AuditSnapshot>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(Box::new(AuditSnapshotIn {
            tx: tokio::sync::Mutex::new(tx),
        }))
    }

    async fn seal_audit(
        &self,
        settled: DateTime<Utc>,
        limit: u32,
    ) -> Result<Option<AuditSeal>, StoreError> {
        // SHARE mode waits for every transaction still inserting audit rows and holds
        // new ones off while the seal is made (a few milliseconds a minute), so no row
        // commits later under an id this seal passes over.
        let mut tx = self.pool.begin().await?;
        sqlx::query("LOCK TABLE audit_log IN SHARE MODE")
            .execute(&mut *tx)
            .await?;
        let last = sqlx::query(
            "SELECT id, up_to_id, row_count, prev_hash, hash, sealed_at FROM audit_seals \
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(audit_seal_from_row)
        .transpose()?;
        let rows =
            sqlx::query("SELECT id, at, hash FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(last.as_ref().map_or(0, |seal| seal.up_to_id))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get::<i64, _>("id")?,
                        row.try_get("at")?,
                        hash32(row.try_get("hash")?, "an audit row's hash")?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
        let Some(seal) = crate::audit::next_seal(last.as_ref(), &rows, settled, now_millis())?
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let bytes = |text: &str| -> Result<Vec<u8>, StoreError> {
            hex::decode(text).map_err(|_| corrupt("a seal's hash".to_owned()))
        };
        let written = sqlx::query(
            "INSERT INTO audit_seals (id, up_to_id, row_count, prev_hash, hash, sealed_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(seal.id)
        .bind(seal.up_to_id)
        .bind(seal.rows)
        .bind(bytes(&seal.prev_hash)?)
        .bind(bytes(&seal.hash)?)
        .bind(seal.sealed_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((written == 1).then_some(seal))
    }
}

pub(crate) fn offset_i64(offset: u64) -> i64 {
    i64::try_from(offset).expect("segment files stay far below 8 EiB")
}

fn push_case_filter(qb: &mut QueryBuilder<Postgres>, query: &CaseQuery) {
    qb.push(" WHERE TRUE");
    if let Some(state) = query.state {
        qb.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(camera) = &query.camera {
        qb.push(" AND camera_id = ")
            .push_bind(camera.as_str().to_owned());
    }
    if let Some(plate) = &query.plate {
        qb.push(" AND plate = ").push_bind(plate.clone());
    }
    if !query.sighted_plates.is_empty() {
        qb.push(" AND COALESCE(decided_plate, plate) IN (");
        let mut spellings = qb.separated(", ");
        for plate in &query.sighted_plates {
            spellings.push_bind(plate.clone());
        }
        qb.push(")");
    }
    if let Some(from) = query.from {
        qb.push(" AND captured_at >= ").push_bind(from);
    }
    if let Some(to) = query.to {
        qb.push(" AND captured_at < ").push_bind(to);
    }
    if query.undeliverable {
        qb.push(crate::model::UNDELIVERABLE);
    }
    if query.owner_from_registry {
        qb.push(crate::model::OWNER_FROM_REGISTRY);
    }
}

fn summary_from_row(row: &PgRow) -> Result<CaseSummary, StoreError> {
    Ok(CaseSummary {
        id: CaseId(row.try_get("id")?),
        event_id: EventId(row.try_get("event_id")?),
        camera_id: decode::opt_camera_id(row.try_get("camera_id")?)?,
        captured_at: row.try_get::<DateTime<Utc>, _>("captured_at")?,
        received_at: row.try_get::<DateTime<Utc>, _>("received_at")?,
        kind: decode::kind(row.try_get("kind")?)?,
        state: decode::state(row.try_get("state")?)?,
        plate: row.try_get("plate")?,
        enforceable: row.try_get("enforceable")?,
    })
}

pub(crate) fn frame_from_row(row: &PgRow) -> Result<CaseFrame, StoreError> {
    let sha: Vec<u8> = row.try_get("sha256")?;
    let idx: i32 = row.try_get("idx")?;
    Ok(CaseFrame {
        index: decode::u32_of(i64::from(idx), "frame index")?,
        role: decode::frame_role(row.try_get("role")?)?,
        sha256: decode::hash32(&sha, "frame hash")?,
        location: location_from_row(row)?,
    })
}

/// Where evidence bytes lie, from a row's `segment`, `byte_offset` and `byte_len`.
pub(crate) fn location_from_row(row: &PgRow) -> Result<FrameLocation, StoreError> {
    let offset: i64 = row.try_get("byte_offset")?;
    Ok(FrameLocation {
        segment: row.try_get("segment")?,
        offset: u64::try_from(offset).map_err(|_| corrupt(format!("offset {offset}")))?,
        len: decode::u32_of(row.try_get("byte_len")?, "evidence length")?,
    })
}

#[async_trait]
impl DeadLetterStore for PgStore {
    async fn record_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<(), StoreError> {
        if letters.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in letters.chunks(rows_per_statement(8)) {
            let mut qb = QueryBuilder::<Postgres>::new(
                "INSERT INTO dead_letters (received_at, topic, camera_id, event_id, reason, \
                 detail, raw_len, raw) ",
            );
            qb.push_values(chunk, |mut row, letter| {
                row.push_bind(letter.received_at)
                    .push_bind(letter.topic.as_str())
                    .push_bind(letter.camera_id.as_deref())
                    .push_bind(letter.event_id.as_deref())
                    .push_bind(letter.reason.as_str())
                    .push_bind(letter.detail.as_str())
                    .push_bind(i64::try_from(letter.raw.len()).unwrap_or(i64::MAX))
                    .push_bind(letter.kept_raw());
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dead_letters(
        &self,
        limit: u32,
        after: Option<i64>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        sqlx::query(
            "SELECT id, received_at, topic, camera_id, event_id, reason, detail, raw_len, \
             length(raw)::BIGINT AS raw_kept \
             FROM dead_letters WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(i64::MIN))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(DeadLetter {
                id: row.try_get("id")?,
                received_at: row.try_get("received_at")?,
                topic: row.try_get("topic")?,
                camera_id: row.try_get("camera_id")?,
                event_id: row.try_get("event_id")?,
                reason: decode::reason(row.try_get("reason")?)?,
                detail: row.try_get("detail")?,
                raw_len: row.try_get("raw_len")?,
                raw_kept: row.try_get("raw_kept")?,
            })
        })
        .collect()
    }

    async fn dead_letter_raw(&self, id: i64) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT raw_len, raw FROM dead_letters WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

fn account_from_row(row: &PgRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: AccountId(row.try_get("id")?),
        login: row.try_get("login")?,
        role: decode::role(row.try_get("role")?)?,
        password_hash: row.try_get("password_hash")?,
        officer: accounts::officer_of(row.try_get("full_name")?, row.try_get("badge")?)?,
        disabled: row
            .try_get::<Option<DateTime<Utc>>, _>("disabled_at")?
            .is_some(),
    })
}

#[async_trait]
impl AccountStore for PgStore {
    async fn take_allowance(
        &self,
        key: &str,
        allowance: Allowance,
    ) -> Result<Result<(), std::time::Duration>, StoreError> {
        let hash = accounts::allowance_key(key);
        let mut tx = self.pool.begin().await?;
        // Made (empty) or found, and locked, in one statement: two processes taking a
        // new key's first attempt at once both find its row and its lock orders them,
        // and no cleanup can delete it between finding and locking.
        let text: String = sqlx::query(
            "INSERT INTO allowances (key_hash, attempts, full_at) VALUES ($1, '', $2) \
             ON CONFLICT (key_hash) DO UPDATE SET key_hash = EXCLUDED.key_hash \
             RETURNING attempts",
        )
        .bind(&hash)
        .bind(Utc::now())
        .fetch_one(&mut *tx)
        .await?
        .try_get("attempts")?;
        // Read under the row's lock: a take that waited for another sees its time after
        // the other's.
        let now = now_millis();
        let (kept, verdict) = allowance.take(accounts::attempts_of(&text)?, now);
        sqlx::query("UPDATE allowances SET attempts = $2, full_at = $3 WHERE key_hash = $1")
            .bind(&hash)
            .bind(accounts::attempts_text(&kept))
            .bind(allowance.full_at(kept.last().copied().unwrap_or(now)))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM allowances WHERE key_hash IN (SELECT key_hash FROM allowances \
             WHERE full_at < $1 AND key_hash <> $2 LIMIT $3 FOR UPDATE SKIP LOCKED)",
        )
        .bind(now)
        .bind(&hash)
        .bind(accounts::FULL_BUDGETS_DROPPED)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(verdict)
    }

    async fn reset_allowance(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM allowances WHERE key_hash = $1")
            .bind(accounts::allowance_key(key))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_account(&self, account: &NewAccount) -> Result<AccountId, StoreError> {
        if let Some(officer) = &account.officer {
            accounts::check_officer(officer)?;
        }
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO accounts (login, role, password_hash, full_name, badge, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&account.login)
        .bind(account.role.as_str())
        .bind(&account.password_hash)
        .bind(account.officer.as_ref().map(|o| o.full_name.as_str()))
        .bind(account.officer.as_ref().map(|o| o.badge.as_str()))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            db_error(e, || {
                accounts::taken(&account.login, account.officer.as_ref())
            })
        })?;
        let detail = accounts::created_detail(account);
        insert_audit(
            &mut tx,
            &checks::audit(None, ACCOUNT_CREATED, &account.created_by, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(AccountId(row.try_get("id")?))
    }

    async fn register_officer(
        &self,
        login: &str,
        officer: &OfficerIdentity,
        by: &str,
    ) -> Result<Option<Account>, StoreError> {
        accounts::check_officer(officer)?;
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query(concat!(
            "UPDATE accounts SET full_name = $1, badge = $2 WHERE login = $3 RETURNING ",
            account_columns!()
        ))
        .bind(&officer.full_name)
        .bind(&officer.badge)
        .bind(login)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_error(e, || format!("badge `{}`", officer.badge)))?
        else {
            return Ok(None);
        };
        let account = account_from_row(&row)?;
        let detail = accounts::registered_detail(login, officer);
        insert_audit(
            &mut tx,
            &checks::audit(None, OFFICER_REGISTERED, by, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(account))
    }

    async fn officers(
        &self,
        logins: &[&str],
    ) -> Result<HashMap<String, OfficerIdentity>, StoreError> {
        let mut found = HashMap::new();
        let rows = sqlx::query(
            "SELECT login, full_name, badge FROM accounts \
             WHERE full_name IS NOT NULL AND login = ANY($1)",
        )
        .bind(logins)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            if let Some(officer) =
                accounts::officer_of(row.try_get("full_name")?, row.try_get("badge")?)?
            {
                found.insert(row.try_get("login")?, officer);
            }
        }
        Ok(found)
    }

    async fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE login = $1"
        ))
        .bind(login)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(account_from_row)
        .transpose()
    }

    async fn store_token(
        &self,
        account: CheckedAccount<'_>,
        token_sha256: &[u8; 32],
        label: &str,
    ) -> Result<CredentialStored, StoreError> {
        // The account row held (FOR SHARE) until the token is in: a change of password
        // or a disabling waits and then ends it, or went first and is seen.
        let stored = sqlx::query(
            "INSERT INTO api_tokens (token_sha256, account_id, label, created_at) \
             SELECT $1, id, $2, now() FROM accounts \
             WHERE id = $3 AND password_hash = $4 AND disabled_at IS NULL FOR SHARE",
        )
        .bind(&token_sha256[..])
        .bind(label)
        .bind(account.id.0)
        .bind(account.password_hash)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, || "api token".to_owned()))?
        .rows_affected();
        Ok(accounts::credential_stored(stored))
    }

    async fn account_by_token(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<Account>, StoreError> {
        sqlx::query(
            "SELECT a.id, a.login, a.role, a.password_hash, a.full_name, a.badge, a.disabled_at \
             FROM api_tokens t JOIN accounts a ON a.id = t.account_id \
             WHERE t.token_sha256 = $1 AND a.disabled_at IS NULL",
        )
        .bind(&token_sha256[..])
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(account_from_row)
        .transpose()
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts ORDER BY login"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(account_from_row)
        .collect()
    }

    async fn change_account(
        &self,
        login: &str,
        change: &AccountChange,
        by: &str,
    ) -> Result<AccountChanged, StoreError> {
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        // The admins in use are locked first, in id order: two admins demoting each
        // other at once cannot both count the other as the one left.
        let admins: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE role = 'admin' AND disabled_at IS NULL \
             ORDER BY id FOR UPDATE",
        )
        .fetch_all(&mut *tx)
        .await?;
        let Some(row) = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE login = $1 FOR UPDATE"
        ))
        .bind(login)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return crate::postgres::finish_unchanged(tx, Ok(AccountChanged::NoAccount)).await;
        };
        let account = account_from_row(&row)?;
        if change.stale_for(&account) {
            return crate::postgres::finish_unchanged(
                tx,
                Ok(AccountChanged::PasswordChangedMeanwhile),
            )
            .await;
        }
        if change.leaves_admins(&account) && !admins.iter().any(|id| *id != account.id.0) {
            return crate::postgres::finish_unchanged(tx, Ok(AccountChanged::LastAdmin)).await;
        }
        let row = sqlx::query(concat!(
            "UPDATE accounts SET role = COALESCE($1, role), \
             password_hash = COALESCE($2, password_hash), \
             disabled_at = CASE WHEN $3::BOOLEAN IS NULL THEN disabled_at \
               WHEN $3 THEN COALESCE(disabled_at, $4) ELSE NULL END \
             WHERE id = $5 RETURNING ",
            account_columns!()
        ))
        .bind(change.role.map(kozomol_core::Role::as_str))
        .bind(change.password_hash.as_deref())
        .bind(change.disabled)
        .bind(now)
        .bind(account.id.0)
        .fetch_one(&mut *tx)
        .await?;
        if change.ends_access() {
            for table in [
                "DELETE FROM api_tokens WHERE account_id = $1",
                "DELETE FROM web_sessions WHERE account_id = $1",
            ] {
                sqlx::query(table)
                    .bind(account.id.0)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let detail = accounts::changed_detail(login, change);
        insert_audit(
            &mut tx,
            &checks::audit(None, ACCOUNT_CHANGED, by, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(AccountChanged::Changed(account_from_row(&row)?))
    }

    async fn open_web_session(
        &self,
        account: CheckedAccount<'_>,
        session_sha256: &[u8; 32],
        expires_at: DateTime<Utc>,
    ) -> Result<CredentialStored, StoreError> {
        let now = Utc::now();
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        // As for a token: the account row held until the session is in.
        let stored = sqlx::query(
            "INSERT INTO web_sessions (session_sha256, account_id, created_at, expires_at) \
             SELECT $1, id, $2, $3 FROM accounts \
             WHERE id = $4 AND password_hash = $5 AND disabled_at IS NULL FOR SHARE",
        )
        .bind(&session_sha256[..])
        .bind(now)
        .bind(expires_at)
        .bind(account.id.0)
        .bind(account.password_hash)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, || "web session".to_owned()))?
        .rows_affected();
        Ok(accounts::credential_stored(stored))
    }

    async fn account_by_web_session(
        &self,
        session_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, StoreError> {
        sqlx::query(
            "SELECT a.id, a.login, a.role, a.password_hash, a.full_name, a.badge, a.disabled_at \
             FROM web_sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE s.session_sha256 = $1 AND s.expires_at > $2 AND a.disabled_at IS NULL",
        )
        .bind(&session_sha256[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(account_from_row)
        .transpose()
    }

    async fn close_web_session(&self, session_sha256: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM web_sessions WHERE session_sha256 = $1")
            .bind(&session_sha256[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
