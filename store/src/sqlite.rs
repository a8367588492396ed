//! The SQLite store: the embedded default. WAL, `synchronous=FULL`, foreign keys on.
//! Writes go through a pool of one connection (SQLite has one writer at a time; a
//! single connection queues writers in-process instead of making them spin on
//! `SQLITE_BUSY`) and start with `BEGIN IMMEDIATE`, so a write never has to upgrade a
//! read lock; reads use their own pool.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{CalibrationCertificate, CameraId, CaseId, CaseState, Site};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use tracing::debug;
use uuid::Uuid;

use crate::accounts::{
    self, account_columns, AccountChange, AccountChanged, CheckedAccount, CredentialStored,
    ACCOUNT_CHANGED,
};
use crate::audit::{now_millis, AuditRow};
use crate::batch::{self, BatchPlan, CaseKey, CreatedRows};
use crate::checks;
use crate::error::{corrupt, db_error};
use crate::sqlite_recognition::insert_audit;
use crate::{
    decode, Account, AccountId, AccountStore, Allowance, AuditEntry, AuditSeal, AuditTrail,
    Backend, Backlog, CameraRecord, CameraRegister, CameraRegistration, CameraStatusUpdate,
    CaseFrame, CaseQuery, CaseRecord, CaseStore, CaseSummary, CaseWrite, DeadLetter,
    DeadLetterStore, FrameLocation, HourlyCount, NewAccount, NewAuditEntry, NewCase, NewDeadLetter,
    OfficerIdentity, Store, StoreError, WorkSummary, ACCOUNT_CREATED, OFFICER_REGISTERED,
};

/// SQLite's default limit on bound parameters per statement (since 3.32).
const MAX_BINDS: usize = 32_766;
/// Longer statements buy nothing more and cost memory in the statement cache.
const MAX_ROWS: usize = 1_000;
const READERS: u32 = 4;
const WRITER_STATEMENT_CACHE: usize = 32;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct SqliteStore {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
}

impl SqliteStore {
    pub(crate) async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        // Processes starting together on a new file race to switch it to WAL, and
        // SQLite answers the loser "busy" without waiting: try again until the
        // busy timeout has passed.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match Self::try_open(path).await {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    debug!(path = %path.display(), error = %e, "database busy at open; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                opened => return opened,
            }
        }
    }

    async fn try_open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // Batches of every size make statements of every length; a small cache keeps
        // the common shapes prepared without holding hundreds of large ones.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .statement_cache_capacity(WRITER_STATEMENT_CACHE),
            )
            .await?;
        crate::migrate::sqlite(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await?;
        debug!(path = %path.display(), "sqlite store open");
        Ok(SqliteStore { writer, reader })
    }
}

/// SQLITE_BUSY, with any of its extended codes.
fn is_busy(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| c & 0xff == 5),
        _ => false,
    }
}

pub(crate) fn rows_per_statement(columns: usize) -> usize {
    batch::rows_per_statement(columns, MAX_BINDS, MAX_ROWS)
}

pub(crate) fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }
}

fn certificate_from_row(row: &SqliteRow) -> Result<(String, CalibrationCertificate), StoreError> {
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
    row: &SqliteRow,
    certificates: Vec<CalibrationCertificate>,
) -> Result<CameraRecord, StoreError> {
    let key: Vec<u8> = row.try_get("public_key")?;
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
            lane: decode::u8_of(row.try_get("site_lane")?, "lane")?,
        },
        registered_at: decode::millis(row.try_get("registered_at")?)?,
        last_seen: decode::opt_millis(row.try_get("last_seen")?)?,
        online: row.try_get("online")?,
        outbox_depth: row.try_get("outbox_depth")?,
        clock_offset_ms: row.try_get("clock_offset_ms")?,
        status_at: decode::opt_millis(row.try_get("status_at")?)?,
        online_heard_at: decode::opt_millis(row.try_get("online_heard_at")?)?,
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

#[async_trait]
impl CameraRegister for SqliteStore {
    async fn register_camera(&self, camera: &CameraRegistration) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO cameras (camera_id, public_key, device_serial, site_id, site_lat_e6, \
             site_lon_e6, site_address, site_direction, site_lane, registered_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
        .bind(i64::from(camera.site.lane))
        .bind(ms(Utc::now()))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO calibration_certificates (device_serial, number, valid_from, valid_until) \
             VALUES (?, ?, ?, ?) ON CONFLICT (device_serial, number) DO UPDATE SET \
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
        let Some(row) = sqlx::query(select_cameras!(" WHERE camera_id = ?"))
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let serial: String = row.try_get("device_serial")?;
        let certificates = sqlx::query(
            "SELECT device_serial, number, valid_from, valid_until FROM calibration_certificates \
             WHERE device_serial = ? ORDER BY valid_from, number",
        )
        .bind(&serial)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| certificate_from_row(r).map(|(_, c)| c))
        .collect::<Result<_, _>>()?;
        camera_from_row(&row, certificates).map(Some)
    }

    async fn cameras(&self) -> Result<Vec<CameraRecord>, StoreError> {
        let rows = sqlx::query(select_cameras!(" ORDER BY camera_id"))
            .fetch_all(&self.reader)
            .await?;
        let mut by_device: HashMap<String, Vec<CalibrationCertificate>> = HashMap::new();
        for row in sqlx::query(
            "SELECT device_serial, number, valid_from, valid_until FROM calibration_certificates \
             ORDER BY device_serial, valid_from, number",
        )
        .fetch_all(&self.reader)
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
        let at = status.at.map(ms);
        sqlx::query(
            "UPDATE cameras SET online = ?1, outbox_depth = ?2, clock_offset_ms = ?3, \
             status_at = COALESCE(?4, CASE WHEN online = ?1 AND status_at IS NOT NULL THEN status_at \
             ELSE max(COALESCE(status_at + 1, ?5), ?5) END), \
             online_heard_at = CASE WHEN ?1 THEN ?5 ELSE online_heard_at END \
             WHERE camera_id = ?6 AND (?4 IS NULL OR status_at IS NULL OR status_at <= ?4)",
        )
        .bind(status.online)
        .bind(status.outbox_depth)
        .bind(status.clock_offset_ms)
        .bind(at)
        .bind(ms(status.received_at))
        .bind(id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl CaseStore for SqliteStore {
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;

        let mut registered: Vec<String> = Vec::with_capacity(cameras.len());
        for chunk in cameras.chunks(rows_per_statement(1)) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("SELECT camera_id FROM cameras WHERE camera_id IN (");
            let mut ids = qb.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut *tx).await? {
                registered.push(row.try_get("camera_id")?);
            }
        }
        if let Some(unknown) = batch::first_unregistered(&cameras, &registered) {
            return Err(StoreError::UnknownCamera(unknown));
        }

        let mut created: HashMap<CaseKey, CaseId> = HashMap::with_capacity(cases.len());
        for chunk in plan.candidates.chunks(rows_per_statement(12)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO cases (event_id, camera_id, captured_at, received_at, kind, state, \
                 plate, enforceable, enforceability_note, fingerprint, event, trace_parent) ",
            );
            qb.push_values(chunk, |mut row, &i| {
                let case = &cases[i];
                row.push_bind(case.event_id.0.to_string())
                    .push_bind(case.camera_id.as_str())
                    .push_bind(ms(case.captured_at))
                    .push_bind(ms(now))
                    .push_bind(case.kind.as_str())
                    .push_bind(kozomol_core::CaseState::Received.as_str())
                    .push_bind(case.camera_plate.as_deref())
                    .push_bind(case.enforceable)
                    .push_bind(case.enforceability_note.as_deref())
                    .push_bind(&case.fingerprint[..])
                    .push_bind(case.event.to_string())
                    .push_bind(case.trace_parent.map(|t| t.to_string()));
            });
            qb.push(
                " ON CONFLICT (camera_id, event_id) DO NOTHING RETURNING id, camera_id, event_id",
            );
            for row in qb.build().fetch_all(&mut *tx).await? {
                let key = (
                    row.try_get::<String, _>("camera_id")?,
                    decode::uuid(row.try_get("event_id")?)?,
                );
                created.insert(key, CaseId(row.try_get("id")?));
            }
        }

        let missing: Vec<&NewCase> = plan.not_created(cases, &created).collect();
        let mut existing: HashMap<CaseKey, (CaseId, [u8; 32])> = HashMap::new();
        for chunk in missing.chunks(rows_per_statement(2)) {
            // A join, not `(camera_id, event_id) IN (VALUES ...)`, which SQLite
            // answers with a scan of the whole table.
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT c.id, c.camera_id, c.event_id, c.fingerprint FROM (",
            );
            qb.push_values(chunk, |mut key, case| {
                key.push_bind(case.camera_id.as_str())
                    .push_bind(case.event_id.0.to_string());
            });
            qb.push(") AS k JOIN cases c ON c.camera_id = k.column1 AND c.event_id = k.column2");
            for row in qb.build().fetch_all(&mut *tx).await? {
                let key = (
                    row.try_get::<String, _>("camera_id")?,
                    decode::uuid(row.try_get("event_id")?)?,
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
        crate::sqlite_recognition::insert_blobs(&mut tx, &rows.stored).await?;
        crate::sqlite_recognition::record_unkept(&mut tx, &rows.unkept).await?;
        // A frame ingest found stored may have been erased since: not recorded, so
        // that ingest, trying again, stores its bytes anew.
        for chunk in rows.stored.chunks(rows_per_statement(1)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT sha256 FROM evidence_blobs WHERE erased_at IS NOT NULL AND sha256 IN (",
            );
            let mut list = qb.separated(", ");
            for (sha, _) in chunk {
                list.push_bind(&sha[..]);
            }
            qb.push(") LIMIT 1");
            if let Some(row) = qb.build().fetch_optional(&mut *tx).await? {
                let sha: Vec<u8> = row.try_get("sha256")?;
                return Err(StoreError::EvidenceErased {
                    sha256: hex::encode(sha),
                });
            }
        }
        for chunk in rows.frames.chunks(rows_per_statement(4)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO case_frames (case_id, idx, role, sha256) ",
            );
            qb.push_values(chunk, |mut row, (case_id, idx, role, sha)| {
                row.push_bind(case_id.0)
                    .push_bind(*idx)
                    .push_bind(*role)
                    .push_bind(&sha[..]);
            });
            qb.build().execute(&mut *tx).await?;
        }
        crate::sqlite_recognition::insert_audits(&mut tx, &rows.audit).await?;
        for chunk in cameras.chunks(rows_per_statement(1) - 1) {
            let mut qb = QueryBuilder::<Sqlite>::new("UPDATE cameras SET last_seen = ");
            qb.push_bind(ms(now)).push(" WHERE camera_id IN (");
            let mut ids = qb.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        debug!(
            cases = cases.len(),
            created = created.len(),
            "sqlite case batch committed"
        );
        Ok(writes)
    }

    async fn case(&self, id: CaseId) -> Result<Option<CaseRecord>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, event_id, camera_id, captured_at, received_at, kind, state, plate, \
             enforceable, enforceability_note, fingerprint, event, personal_data_purged_at, \
             evidence_destroyed_at \
             FROM cases WHERE id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let frames = sqlx::query(
            "SELECT f.idx, f.role, f.sha256, b.segment, b.byte_offset, b.byte_len \
             FROM case_frames f JOIN evidence_blobs b ON b.sha256 = f.sha256 \
             WHERE f.case_id = ? ORDER BY f.idx",
        )
        .bind(id.0)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(frame_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        case_from_row(&row, frames).map(Some)
    }

    async fn work_summary(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<WorkSummary, StoreError> {
        let tiers = sqlx::query(
            "SELECT r.tier, count(*) AS n, avg(r.decided_at - c.received_at) / 1000.0 AS mean_s \
             FROM reviews r JOIN cases c ON c.id = r.case_id \
             WHERE r.decided_at >= ? AND r.decided_at < ? GROUP BY r.tier ORDER BY r.tier",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.reader)
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
            "SELECT count(*) AS issued, coalesce(sum(amount_minor), 0) AS issued_minor \
             FROM resolutions WHERE issued_at >= ? AND issued_at < ?",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_one(&self.reader)
        .await?;
        summary.issued = issued.try_get("issued")?;
        summary.issued_minor = issued.try_get("issued_minor")?;
        summary.paid_minor = sqlx::query(
            "SELECT coalesce(sum(amount_minor - excess_minor), 0) AS paid_minor \
             FROM payments WHERE paid_at >= ? AND paid_at < ? AND reversed_at IS NULL",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_one(&self.reader)
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
            "SELECT (c.captured_at / 3600000) * 3600000 AS hour, \
             json_extract(c.event, '$.site.id') AS site_id, \
             max(json_extract(c.event, '$.site.address')) AS site_address, \
             max(json_extract(c.event, '$.site.lat_e6')) AS site_lat_e6, \
             max(json_extract(c.event, '$.site.lon_e6')) AS site_lon_e6, c.kind, \
             count(*) AS recorded, count(r.number) AS fined \
             FROM cases c LEFT JOIN resolutions r ON r.case_id = c.id \
             WHERE c.captured_at >= ? AND c.captured_at < ? \
             AND NOT EXISTS (SELECT 1 FROM nominations n WHERE n.reissued_case_id = c.id) \
             GROUP BY 1, 2, c.kind ORDER BY 1, 2, c.kind",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(HourlyCount {
                hour: decode::millis(row.try_get("hour")?)?,
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
        let mut qb = QueryBuilder::<Sqlite>::new(
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
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(summary_from_row)
            .collect()
    }

    async fn count_cases(&self, query: &CaseQuery) -> Result<u64, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) AS n FROM cases");
        push_case_filter(&mut qb, query);
        let n: i64 = qb.build().fetch_one(&self.reader).await?.try_get("n")?;
        u64::try_from(n).map_err(|_| corrupt(format!("count {n}")))
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT state, count(*) AS n, min(received_at) AS oldest FROM cases WHERE state IN (",
        );
        let mut list = qb.separated(", ");
        for state in CaseState::WAITING {
            list.push_bind(state.as_str());
        }
        qb.push(") GROUP BY state");
        let mut found = HashMap::new();
        for row in qb.build().fetch_all(&self.reader).await? {
            let state = decode::state(row.try_get("state")?)?;
            let n: i64 = row.try_get("n")?;
            let oldest = decode::opt_millis(row.try_get("oldest")?)?;
            found.insert(state, (n, oldest));
        }
        Ok(crate::model::backlog_of(found))
    }

    async fn known_frames(&self, sha256s: &[[u8; 32]]) -> Result<HashSet<[u8; 32]>, StoreError> {
        let mut known = HashSet::new();
        for chunk in sha256s.chunks(rows_per_statement(1)) {
            let mut qb =
                // An erased blob is not known: its bytes must be stored again.
                QueryBuilder::<Sqlite>::new(
                    "SELECT sha256 FROM evidence_blobs WHERE erased_at IS NULL AND sha256 IN (",
                );
            let mut list = qb.separated(", ");
            for sha in chunk {
                list.push_bind(&sha[..]);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&self.reader).await? {
                let sha: Vec<u8> = row.try_get("sha256")?;
                known.insert(decode::hash32(&sha, "evidence hash")?);
            }
        }
        Ok(known)
    }

    async fn case_audit(&self, id: CaseId) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query(
            "SELECT id, batch_id, case_id, at, actor, action, from_state, to_state, detail, \
             prev_hash, hash FROM audit_log WHERE case_id = ? ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(audit_entry_from_row)
        .collect()
    }

    async fn trace_parents(
        &self,
        cases: &[CaseId],
    ) -> Result<HashMap<CaseId, kozomol_core::TraceParent>, StoreError> {
        let mut traces = HashMap::new();
        for chunk in cases.chunks(rows_per_statement(1)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT id, trace_parent FROM cases WHERE trace_parent IS NOT NULL AND id IN (",
            );
            let mut list = qb.separated(", ");
            for case in chunk {
                list.push_bind(case.0);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&self.reader).await? {
                let (id, trace) = (row.try_get("id")?, row.try_get("trace_parent")?);
                if let Some(trace) = decode::trace_parent(CaseId(id), trace) {
                    traces.insert(CaseId(id), trace);
                }
            }
        }
        Ok(traces)
    }

    async fn case_places(
        &self,
        cases: &[CaseId],
    ) -> Result<HashMap<CaseId, crate::CasePlace>, StoreError> {
        let mut places = HashMap::new();
        for chunk in cases.chunks(rows_per_statement(1)) {
            let mut qb = QueryBuilder::<Sqlite>::new(concat!(
                "SELECT s.id, ",
                crate::model::sqlite_place_columns!(),
                " FROM cases s WHERE s.id IN ("
            ));
            let mut list = qb.separated(", ");
            for case in chunk {
                list.push_bind(case.0);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&self.reader).await? {
                if let Some(place) = case_place(&row)? {
                    places.insert(CaseId(row.try_get("id")?), place);
                }
            }
        }
        Ok(places)
    }
}

/// The [`crate::CasePlace`] of a row with `sqlite_place_columns!()`.
pub(crate) fn case_place(row: &SqliteRow) -> Result<Option<crate::CasePlace>, StoreError> {
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
    executor: impl sqlx::Executor<'e, Database = Sqlite>,
    after: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    sqlx::query(
        "SELECT id, batch_id, case_id, at, actor, action, from_state, to_state, detail, \
         prev_hash, hash FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
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
    executor: impl sqlx::Executor<'e, Database = Sqlite>,
    after: i64,
    limit: u32,
) -> Result<Vec<AuditSeal>, StoreError> {
    sqlx::query(
        "SELECT id, up_to_id, row_count, prev_hash, hash, sealed_at FROM audit_seals \
         WHERE id > ? ORDER BY id LIMIT ?",
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
    tx: tokio::sync::Mutex<sqlx::Transaction<'static, Sqlite>>,
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

fn audit_entry_from_row(row: &SqliteRow) -> Result<AuditEntry, StoreError> {
    let prev_hash: Vec<u8> = row.try_get("prev_hash")?;
    let hash: Vec<u8> = row.try_get("hash")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        batch_id: decode::uuid(row.try_get("batch_id")?)?,
        case_id: row.try_get::<Option<i64>, _>("case_id")?.map(CaseId),
        at: decode::millis(row.try_get("at")?)?,
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

fn audit_seal_from_row(row: &SqliteRow) -> Result<AuditSeal, StoreError> {
    Ok(AuditSeal {
        id: row.try_get("id")?,
        up_to_id: row.try_get("up_to_id")?,
        rows: row.try_get("row_count")?,
        prev_hash: hex::encode(row.try_get::<Vec<u8>, _>("prev_hash")?),
        hash: hex::encode(row.try_get::<Vec<u8>, _>("hash")?),
        sealed_at: decode::millis(row.try_get("sealed_at")?)?,
    })
}

#[async_trait]
impl AuditTrail for SqliteStore {
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
        let mut conn = self.writer.acquire().await?;
        insert_audit(&mut conn, &audit).await
    }

    async fn audit_rows(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        audit_rows_in(&self.reader, after, limit).await
    }

    async fn audit_seals(&self, after: i64, limit: u32) -> Result<Vec<AuditSeal>, StoreError> {
        audit_seals_in(&self.reader, after, limit).await
    }

    async fn audit_snapshot(&self) -> Result<Box<dyn crate::AuditSnapshot>, StoreError> {
        let tx = self.reader.begin().await?;
        // In WAL mode a read transaction sees one snapshot from its first read on.
        Ok(Box::new(AuditSnapshotIn {
            tx: tokio::sync::Mutex::new(tx),
        }))
    }

    async fn seal_audit(
        &self,
        settled: DateTime<Utc>,
        limit: u32,
    ) -> Result<Option<AuditSeal>, StoreError> {
        let last = sqlx::query(
            "SELECT id, up_to_id, row_count, prev_hash, hash, sealed_at FROM audit_seals \
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.writer)
        .await?
        .as_ref()
        .map(audit_seal_from_row)
        .transpose()?;
        let rows =
            sqlx::query("SELECT id, at, hash FROM audit_log WHERE id > ? ORDER BY id LIMIT ?")
                .bind(last.as_ref().map_or(0, |seal| seal.up_to_id))
                .bind(i64::from(limit))
                .fetch_all(&self.writer)
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get::<i64, _>("id")?,
                        decode::millis(row.try_get("at")?)?,
                        hash32(row.try_get("hash")?, "an audit row's hash")?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
        let Some(seal) = crate::audit::next_seal(last.as_ref(), &rows, settled, now_millis())?
        else {
            return Ok(None);
        };
        let bytes = |text: &str| -> Result<Vec<u8>, StoreError> {
            hex::decode(text).map_err(|_| corrupt("a seal's hash".to_owned()))
        };
        let written = sqlx::query(
            "INSERT INTO audit_seals (id, up_to_id, row_count, prev_hash, hash, sealed_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(seal.id)
        .bind(seal.up_to_id)
        .bind(seal.rows)
        .bind(bytes(&seal.prev_hash)?)
        .bind(bytes(&seal.hash)?)
        .bind(ms(seal.sealed_at))
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok((written == 1).then_some(seal))
    }
}

pub(crate) fn offset_i64(offset: u64) -> i64 {
    i64::try_from(offset).expect("segment files stay far below 8 EiB")
}

fn push_case_filter(qb: &mut QueryBuilder<Sqlite>, query: &CaseQuery) {
    qb.push(" WHERE 1 = 1");
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
        qb.push(" AND captured_at >= ").push_bind(ms(from));
    }
    if let Some(to) = query.to {
        qb.push(" AND captured_at < ").push_bind(ms(to));
    }
    if query.undeliverable {
        qb.push(crate::model::UNDELIVERABLE);
    }
    if query.owner_from_registry {
        qb.push(crate::model::OWNER_FROM_REGISTRY);
    }
}

/// A case from a row of the `cases` columns `case` selects, and its frames.
pub(crate) fn case_from_row(
    row: &SqliteRow,
    frames: Vec<CaseFrame>,
) -> Result<CaseRecord, StoreError> {
    let summary = summary_from_row(row)?;
    let fingerprint: Vec<u8> = row.try_get("fingerprint")?;
    let event: String = row.try_get("event")?;
    Ok(CaseRecord {
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
        event: serde_json::from_str(&event).map_err(|e| corrupt(format!("case event: {e}")))?,
        frames,
        personal_data_purged_at: row
            .try_get::<Option<i64>, _>("personal_data_purged_at")?
            .map(decode::millis)
            .transpose()?,
        evidence_destroyed_at: row
            .try_get::<Option<i64>, _>("evidence_destroyed_at")?
            .map(decode::millis)
            .transpose()?,
    })
}

fn summary_from_row(row: &SqliteRow) -> Result<CaseSummary, StoreError> {
    Ok(CaseSummary {
        id: CaseId(row.try_get("id")?),
        event_id: kozomol_core::EventId(decode::uuid(row.try_get("event_id")?)?),
        camera_id: decode::opt_camera_id(row.try_get("camera_id")?)?,
        captured_at: decode::millis(row.try_get("captured_at")?)?,
        received_at: decode::millis(row.try_get("received_at")?)?,
        kind: decode::kind(row.try_get("kind")?)?,
        state: decode::state(row.try_get("state")?)?,
        plate: row.try_get("plate")?,
        enforceable: row.try_get("enforceable")?,
    })
}

pub(crate) fn frame_from_row(row: &SqliteRow) -> Result<CaseFrame, StoreError> {
    let sha: Vec<u8> = row.try_get("sha256")?;
    Ok(CaseFrame {
        index: decode::u32_of(row.try_get("idx")?, "frame index")?,
        role: decode::frame_role(row.try_get("role")?)?,
        sha256: decode::hash32(&sha, "frame hash")?,
        location: location_from_row(row)?,
    })
}

/// Where evidence bytes lie, from a row's `segment`, `byte_offset` and `byte_len`.
pub(crate) fn location_from_row(row: &SqliteRow) -> Result<FrameLocation, StoreError> {
    let offset: i64 = row.try_get("byte_offset")?;
    Ok(FrameLocation {
        segment: row.try_get("segment")?,
        offset: u64::try_from(offset).map_err(|_| corrupt(format!("offset {offset}")))?,
        len: decode::u32_of(row.try_get("byte_len")?, "evidence length")?,
    })
}

#[async_trait]
impl DeadLetterStore for SqliteStore {
    async fn record_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<(), StoreError> {
        if letters.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in letters.chunks(rows_per_statement(8)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO dead_letters (received_at, topic, camera_id, event_id, reason, \
                 detail, raw_len, raw) ",
            );
            qb.push_values(chunk, |mut row, letter| {
                row.push_bind(ms(letter.received_at))
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
             length(raw) AS raw_kept \
             FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after.unwrap_or(i64::MIN))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(DeadLetter {
                id: row.try_get("id")?,
                received_at: decode::millis(row.try_get("received_at")?)?,
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
            sqlx::query_as("SELECT raw_len, raw FROM dead_letters WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }
}

fn account_from_row(row: &SqliteRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: AccountId(row.try_get("id")?),
        login: row.try_get("login")?,
        role: decode::role(row.try_get("role")?)?,
        password_hash: row.try_get("password_hash")?,
        officer: accounts::officer_of(row.try_get("full_name")?, row.try_get("badge")?)?,
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
    })
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn take_allowance(
        &self,
        key: &str,
        allowance: Allowance,
    ) -> Result<Result<(), Duration>, StoreError> {
        let hash = accounts::allowance_key(key);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // Read under the write lock: a take that waited for another sees its time after
        // the other's.
        let now = now_millis();
        let text: Option<String> =
            sqlx::query("SELECT attempts FROM allowances WHERE key_hash = ?")
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get("attempts"))
                .transpose()?;
        let taken = accounts::attempts_of(text.as_deref().unwrap_or_default())?;
        let (kept, verdict) = allowance.take(taken, now);
        sqlx::query(
            "INSERT INTO allowances (key_hash, attempts, full_at) VALUES (?, ?, ?) \
             ON CONFLICT (key_hash) DO UPDATE SET attempts = excluded.attempts, \
             full_at = excluded.full_at",
        )
        .bind(&hash)
        .bind(accounts::attempts_text(&kept))
        .bind(ms(allowance.full_at(kept.last().copied().unwrap_or(now))))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM allowances WHERE key_hash IN (SELECT key_hash FROM allowances \
             WHERE full_at < ? AND key_hash <> ? LIMIT ?)",
        )
        .bind(ms(now))
        .bind(&hash)
        .bind(accounts::FULL_BUDGETS_DROPPED)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(verdict)
    }

    async fn reset_allowance(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM allowances WHERE key_hash = ?")
            .bind(accounts::allowance_key(key))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn create_account(&self, account: &NewAccount) -> Result<AccountId, StoreError> {
        if let Some(officer) = &account.officer {
            accounts::check_officer(officer)?;
        }
        let now = now_millis();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "INSERT INTO accounts (login, role, password_hash, full_name, badge, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&account.login)
        .bind(account.role.as_str())
        .bind(&account.password_hash)
        .bind(account.officer.as_ref().map(|o| o.full_name.as_str()))
        .bind(account.officer.as_ref().map(|o| o.badge.as_str()))
        .bind(ms(now))
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(row) = sqlx::query(concat!(
            "UPDATE accounts SET full_name = ?, badge = ? WHERE login = ? RETURNING ",
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
        for chunk in logins.chunks(MAX_ROWS) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT login, full_name, badge FROM accounts \
                 WHERE full_name IS NOT NULL AND login IN (",
            );
            let mut list = qb.separated(", ");
            for login in chunk {
                list.push_bind(*login);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&self.reader).await? {
                if let Some(officer) =
                    accounts::officer_of(row.try_get("full_name")?, row.try_get("badge")?)?
                {
                    found.insert(row.try_get("login")?, officer);
                }
            }
        }
        Ok(found)
    }

    async fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE login = ?"
        ))
        .bind(login)
        .fetch_optional(&self.reader)
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
        let stored = sqlx::query(
            "INSERT INTO api_tokens (token_sha256, account_id, label, created_at) \
             SELECT ?, id, ?, ? FROM accounts \
             WHERE id = ? AND password_hash = ? AND disabled_at IS NULL",
        )
        .bind(&token_sha256[..])
        .bind(label)
        .bind(ms(Utc::now()))
        .bind(account.id.0)
        .bind(account.password_hash)
        .execute(&self.writer)
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
             WHERE t.token_sha256 = ? AND a.disabled_at IS NULL",
        )
        .bind(&token_sha256[..])
        .fetch_optional(&self.reader)
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
        .fetch_all(&self.reader)
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(row) = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE login = ?"
        ))
        .bind(login)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(AccountChanged::NoAccount);
        };
        let account = account_from_row(&row)?;
        if change.stale_for(&account) {
            return Ok(AccountChanged::PasswordChangedMeanwhile);
        }
        if change.leaves_admins(&account) {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM accounts \
                 WHERE role = 'admin' AND disabled_at IS NULL AND id <> ?",
            )
            .bind(account.id.0)
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Ok(AccountChanged::LastAdmin);
            }
        }
        let row = sqlx::query(concat!(
            "UPDATE accounts SET role = COALESCE(?, role), \
             password_hash = COALESCE(?, password_hash), \
             disabled_at = CASE WHEN ? IS NULL THEN disabled_at \
               WHEN ? THEN COALESCE(disabled_at, ?) ELSE NULL END \
             WHERE id = ? RETURNING ",
            account_columns!()
        ))
        .bind(change.role.map(kozomol_core::Role::as_str))
        .bind(change.password_hash.as_deref())
        .bind(change.disabled)
        .bind(change.disabled)
        .bind(ms(now))
        .bind(account.id.0)
        .fetch_one(&mut *tx)
        .await?;
        if change.ends_access() {
            for table in [
                "DELETE FROM api_tokens WHERE account_id = ?",
                "DELETE FROM web_sessions WHERE account_id = ?",
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
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= ?")
            .bind(ms(now))
            .execute(&self.writer)
            .await?;
        let stored = sqlx::query(
            "INSERT INTO web_sessions (session_sha256, account_id, created_at, expires_at) \
             SELECT ?, id, ?, ? FROM accounts \
             WHERE id = ? AND password_hash = ? AND disabled_at IS NULL",
        )
        .bind(&session_sha256[..])
        .bind(ms(now))
        .bind(ms(expires_at))
        .bind(account.id.0)
        .bind(account.password_hash)
        .execute(&self.writer)
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
             WHERE s.session_sha256 = ? AND s.expires_at > ? AND a.disabled_at IS NULL",
        )
        .bind(&session_sha256[..])
        .bind(ms(now))
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(account_from_row)
        .transpose()
    }

    async fn close_web_session(&self, session_sha256: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM web_sessions WHERE session_sha256 = ?")
            .bind(&session_sha256[..])
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
