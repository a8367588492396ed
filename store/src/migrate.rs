//! A small migration runner: the SQL files of `store/migrations/{sqlite,postgres}` are
//! compiled in, applied in version order inside one transaction, and recorded with a
//! checksum in `schema_migrations`. Concurrent starts are serialized: SQLite by
//! `BEGIN IMMEDIATE`, PostgreSQL by a transaction-scoped advisory lock.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sqlx::{PgPool, SqlitePool};
use tracing::info;

use crate::StoreError;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "recognition",
        sql: include_str!("../migrations/sqlite/0002_recognition.sql"),
    },
    Migration {
        version: 3,
        name: "review",
        sql: include_str!("../migrations/sqlite/0003_review.sql"),
    },
    Migration {
        version: 4,
        name: "fine_stages",
        sql: include_str!("../migrations/sqlite/0004_fine_stages.sql"),
    },
    Migration {
        version: 5,
        name: "delivery",
        sql: include_str!("../migrations/sqlite/0005_delivery.sql"),
    },
    Migration {
        version: 6,
        name: "appeals",
        sql: include_str!("../migrations/sqlite/0006_appeals.sql"),
    },
    Migration {
        version: 7,
        name: "checks",
        sql: include_str!("../migrations/sqlite/0007_checks.sql"),
    },
    Migration {
        version: 8,
        name: "officer_reports",
        sql: include_str!("../migrations/sqlite/0008_officer_reports.sql"),
    },
    Migration {
        version: 9,
        name: "owner_liability",
        sql: include_str!("../migrations/sqlite/0009_owner_liability.sql"),
    },
    Migration {
        version: 10,
        name: "checks_passed",
        sql: include_str!("../migrations/sqlite/0010_checks_passed.sql"),
    },
    Migration {
        version: 11,
        name: "officers_register",
        sql: include_str!("../migrations/sqlite/0011_officers_register.sql"),
    },
    Migration {
        version: 12,
        name: "payments",
        sql: include_str!("../migrations/sqlite/0012_payments.sql"),
    },
    Migration {
        version: 13,
        name: "payment_reversals",
        sql: include_str!("../migrations/sqlite/0013_payment_reversals.sql"),
    },
    Migration {
        version: 14,
        name: "payment_intents",
        sql: include_str!("../migrations/sqlite/0014_payment_intents.sql"),
    },
    Migration {
        version: 15,
        name: "reconciliation",
        sql: include_str!("../migrations/sqlite/0015_reconciliation.sql"),
    },
    Migration {
        version: 16,
        name: "registry_owner",
        sql: include_str!("../migrations/sqlite/0016_registry_owner.sql"),
    },
    Migration {
        version: 17,
        name: "violation_subscriptions",
        sql: include_str!("../migrations/sqlite/0017_violation_subscriptions.sql"),
    },
    Migration {
        version: 18,
        name: "refunds",
        sql: include_str!("../migrations/sqlite/0018_refunds.sql"),
    },
    Migration {
        version: 19,
        name: "web_sessions",
        sql: include_str!("../migrations/sqlite/0019_web_sessions.sql"),
    },
    Migration {
        version: 20,
        name: "audit_seals",
        sql: include_str!("../migrations/sqlite/0020_audit_seals.sql"),
    },
    Migration {
        version: 21,
        name: "retention",
        sql: include_str!("../migrations/sqlite/0021_retention.sql"),
    },
    Migration {
        version: 22,
        name: "case_file_destruction",
        sql: include_str!("../migrations/sqlite/0022_case_file_destruction.sql"),
    },
    Migration {
        version: 23,
        name: "trace_context",
        sql: include_str!("../migrations/sqlite/0023_trace_context.sql"),
    },
    Migration {
        version: 24,
        name: "accident_file_destruction",
        sql: include_str!("../migrations/sqlite/0024_accident_file_destruction.sql"),
    },
    Migration {
        version: 25,
        name: "evidence_copies",
        sql: include_str!("../migrations/sqlite/0025_evidence_copies.sql"),
    },
    Migration {
        version: 26,
        name: "dead_letters_unpurged",
        sql: include_str!("../migrations/sqlite/0026_dead_letters_unpurged.sql"),
    },
    Migration {
        version: 27,
        name: "contact_confirmations",
        sql: include_str!("../migrations/sqlite/0027_contact_confirmations.sql"),
    },
    Migration {
        version: 28,
        name: "statement_paid_on",
        sql: include_str!("../migrations/sqlite/0028_statement_paid_on.sql"),
    },
    Migration {
        version: 29,
        name: "payment_reversal_id",
        sql: include_str!("../migrations/sqlite/0029_payment_reversal_id.sql"),
    },
    Migration {
        version: 30,
        name: "print_batches_printed",
        sql: include_str!("../migrations/sqlite/0030_print_batches_printed.sql"),
    },
    Migration {
        version: 31,
        name: "evidence_sweeps",
        sql: include_str!("../migrations/sqlite/0031_evidence_sweeps.sql"),
    },
    Migration {
        version: 32,
        name: "allowances",
        sql: include_str!("../migrations/sqlite/0032_allowances.sql"),
    },
    Migration {
        version: 33,
        name: "undated_deliveries",
        sql: include_str!("../migrations/sqlite/0033_undated_deliveries.sql"),
    },
    Migration {
        version: 34,
        name: "accounts_disabled",
        sql: include_str!("../migrations/sqlite/0034_accounts_disabled.sql"),
    },
    Migration {
        version: 35,
        name: "subscription_ids_never_reused",
        sql: include_str!("../migrations/sqlite/0035_subscription_ids_never_reused.sql"),
    },
    Migration {
        version: 36,
        name: "cameras_heard_at",
        sql: include_str!("../migrations/sqlite/0036_cameras_heard_at.sql"),
    },
    Migration {
        version: 37,
        name: "payment_reports_paid_at",
        sql: include_str!("../migrations/sqlite/0037_payment_reports_paid_at.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "recognition",
        sql: include_str!("../migrations/postgres/0002_recognition.sql"),
    },
    Migration {
        version: 3,
        name: "review",
        sql: include_str!("../migrations/postgres/0003_review.sql"),
    },
    Migration {
        version: 4,
        name: "fine_stages",
        sql: include_str!("../migrations/postgres/0004_fine_stages.sql"),
    },
    Migration {
        version: 5,
        name: "delivery",
        sql: include_str!("../migrations/postgres/0005_delivery.sql"),
    },
    Migration {
        version: 6,
        name: "appeals",
        sql: include_str!("../migrations/postgres/0006_appeals.sql"),
    },
    Migration {
        version: 7,
        name: "checks",
        sql: include_str!("../migrations/postgres/0007_checks.sql"),
    },
    Migration {
        version: 8,
        name: "officer_reports",
        sql: include_str!("../migrations/postgres/0008_officer_reports.sql"),
    },
    Migration {
        version: 9,
        name: "owner_liability",
        sql: include_str!("../migrations/postgres/0009_owner_liability.sql"),
    },
    Migration {
        version: 10,
        name: "checks_passed",
        sql: include_str!("../migrations/postgres/0010_checks_passed.sql"),
    },
    Migration {
        version: 11,
        name: "officers_register",
        sql: include_str!("../migrations/postgres/0011_officers_register.sql"),
    },
    Migration {
        version: 12,
        name: "payments",
        sql: include_str!("../migrations/postgres/0012_payments.sql"),
    },
    Migration {
        version: 13,
        name: "payment_reversals",
        sql: include_str!("../migrations/postgres/0013_payment_reversals.sql"),
    },
    Migration {
        version: 14,
        name: "payment_intents",
        sql: include_str!("../migrations/postgres/0014_payment_intents.sql"),
    },
    Migration {
        version: 15,
        name: "reconciliation",
        sql: include_str!("../migrations/postgres/0015_reconciliation.sql"),
    },
    Migration {
        version: 16,
        name: "registry_owner",
        sql: include_str!("../migrations/postgres/0016_registry_owner.sql"),
    },
    Migration {
        version: 17,
        name: "violation_subscriptions",
        sql: include_str!("../migrations/postgres/0017_violation_subscriptions.sql"),
    },
    Migration {
        version: 18,
        name: "refunds",
        sql: include_str!("../migrations/postgres/0018_refunds.sql"),
    },
    Migration {
        version: 19,
        name: "web_sessions",
        sql: include_str!("../migrations/postgres/0019_web_sessions.sql"),
    },
    Migration {
        version: 20,
        name: "audit_seals",
        sql: include_str!("../migrations/postgres/0020_audit_seals.sql"),
    },
    Migration {
        version: 21,
        name: "retention",
        sql: include_str!("../migrations/postgres/0021_retention.sql"),
    },
    Migration {
        version: 22,
        name: "case_file_destruction",
        sql: include_str!("../migrations/postgres/0022_case_file_destruction.sql"),
    },
    Migration {
        version: 23,
        name: "trace_context",
        sql: include_str!("../migrations/postgres/0023_trace_context.sql"),
    },
    Migration {
        version: 24,
        name: "accident_file_destruction",
        sql: include_str!("../migrations/postgres/0024_accident_file_destruction.sql"),
    },
    Migration {
        version: 25,
        name: "evidence_copies",
        sql: include_str!("../migrations/postgres/0025_evidence_copies.sql"),
    },
    Migration {
        version: 26,
        name: "dead_letters_unpurged",
        sql: include_str!("../migrations/postgres/0026_dead_letters_unpurged.sql"),
    },
    Migration {
        version: 27,
        name: "contact_confirmations",
        sql: include_str!("../migrations/postgres/0027_contact_confirmations.sql"),
    },
    Migration {
        version: 28,
        name: "statement_paid_on",
        sql: include_str!("../migrations/postgres/0028_statement_paid_on.sql"),
    },
    Migration {
        version: 29,
        name: "payment_reversal_id",
        sql: include_str!("../migrations/postgres/0029_payment_reversal_id.sql"),
    },
    Migration {
        version: 30,
        name: "print_batches_printed",
        sql: include_str!("../migrations/postgres/0030_print_batches_printed.sql"),
    },
    Migration {
        version: 31,
        name: "evidence_sweeps",
        sql: include_str!("../migrations/postgres/0031_evidence_sweeps.sql"),
    },
    Migration {
        version: 32,
        name: "allowances",
        sql: include_str!("../migrations/postgres/0032_allowances.sql"),
    },
    Migration {
        version: 33,
        name: "undated_deliveries",
        sql: include_str!("../migrations/postgres/0033_undated_deliveries.sql"),
    },
    Migration {
        version: 34,
        name: "accounts_disabled",
        sql: include_str!("../migrations/postgres/0034_accounts_disabled.sql"),
    },
    Migration {
        version: 35,
        name: "subscription_ids_never_reused",
        sql: include_str!("../migrations/postgres/0035_subscription_ids_never_reused.sql"),
    },
    Migration {
        version: 36,
        name: "cameras_heard_at",
        sql: include_str!("../migrations/postgres/0036_cameras_heard_at.sql"),
    },
    Migration {
        version: 37,
        name: "payment_reports_paid_at",
        sql: include_str!("../migrations/postgres/0037_payment_reports_paid_at.sql"),
    },
];

/// Any constant works; it only has to be the same in every kozomol process.
const PG_MIGRATION_LOCK: i64 = 0x6b6f_7a6f_6d6f_6c01;

const SQLITE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    checksum   BLOB NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT";

const PG_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   BYTEA NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

fn checksum(m: &Migration) -> Vec<u8> {
    Sha256::digest(m.sql.as_bytes()).to_vec()
}

fn failed(m: &Migration) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| StoreError::Migration(format!("{:04}_{}: {err}", m.version, m.name))
}

/// Which migrations still need applying; refuses a ledger whose applied migrations
/// differ from the compiled-in ones.
fn pending<'m>(
    all: &'m [Migration],
    applied: &[(i64, Vec<u8>)],
) -> Result<Vec<&'m Migration>, StoreError> {
    let applied: HashMap<i64, &Vec<u8>> = applied.iter().map(|(v, c)| (*v, c)).collect();
    if let Some(newest) = applied.keys().max() {
        if all.iter().all(|m| m.version != *newest) {
            return Err(StoreError::Migration(format!(
                "database has migration {newest}, which this kozomol does not know: it is older than the database"
            )));
        }
    }
    let mut todo = Vec::new();
    for m in all {
        match applied.get(&m.version) {
            Some(sum) if **sum == checksum(m) => {}
            Some(_) => {
                return Err(StoreError::Migration(format!(
                    "{:04}_{} was changed after it was applied",
                    m.version, m.name
                )))
            }
            None => todo.push(m),
        }
    }
    Ok(todo)
}

pub(crate) async fn sqlite(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::raw_sql(SQLITE_LEDGER).execute(&mut *tx).await?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?;
    for m in pending(SQLITE, &applied)? {
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(failed(m))?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(checksum(m))
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(failed(m))?;
        info!(
            version = m.version,
            name = m.name,
            backend = "sqlite",
            "migration applied"
        );
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn postgres(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(PG_LEDGER).execute(&mut *tx).await?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?;
    for m in pending(POSTGRES, &applied)? {
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(failed(m))?;
        sqlx::query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(checksum(m))
            .execute(&mut *tx)
            .await
            .map_err(failed(m))?;
        info!(
            version = m.version,
            name = m.name,
            backend = "postgres",
            "migration applied"
        );
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SQLite database migrated up to `version` (the ledger kept as kozomol keeps it),
    /// with foreign keys on, for a test to add rows of that age to.
    async fn sqlite_at(version: usize) -> (tempfile::TempDir, SqlitePool) {
        use sqlx::sqlite::SqliteConnectOptions;
        use std::str::FromStr;

        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .expect("url")
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePool::connect_with(options).await.expect("sqlite");
        let mut tx = pool.begin().await.expect("tx");
        sqlx::raw_sql(SQLITE_LEDGER)
            .execute(&mut *tx)
            .await
            .expect("ledger");
        for m in &SQLITE[..version] {
            sqlx::raw_sql(m.sql)
                .execute(&mut *tx)
                .await
                .expect("old schema");
            sqlx::query("INSERT INTO schema_migrations VALUES (?, ?, ?, 0)")
                .bind(m.version)
                .bind(m.name)
                .bind(checksum(m))
                .execute(&mut *tx)
                .await
                .expect("ledger row");
        }
        tx.commit().await.expect("commit the old schema");
        (dir, pool)
    }

    async fn assert_no_dangling_references(pool: &SqlitePool) {
        let dangling: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(pool)
                .await
                .expect("foreign key check");
        assert!(dangling.is_empty(), "{dangling:?}");
    }

    /// 0008 rebuilds SQLite's `cases` to make `camera_id` nullable: the rows, their ids,
    /// the id sequence and every reference to them must come through unchanged.
    #[tokio::test]
    async fn sqlite_cases_survive_the_rebuild_that_frees_the_camera() {
        let (_dir, pool) = sqlite_at(7).await;
        let mut tx = pool.begin().await.expect("tx");
        sqlx::raw_sql(
            "INSERT INTO cameras (camera_id, public_key, device_serial, site_id, site_lat_e6, \
             site_lon_e6, site_address, site_direction, site_lane, registered_at) \
             VALUES ('cam-1', zeroblob(32), 'SER-1', 's', 0, 0, 'a', 'n', 1, 0); \
             INSERT INTO cases (id, event_id, camera_id, captured_at, received_at, kind, state, \
             plate, enforceable, fingerprint, event, decided_plate, stage_attempts) \
             VALUES (41, 'e-41', 'cam-1', 1, 2, 'speeding', 'approved', '01KG1', 1, \
             zeroblob(32), '{}', '01KG1', 3); \
             INSERT INTO evidence_blobs VALUES (zeroblob(32), 'seg', 0, 10); \
             INSERT INTO case_frames VALUES (41, 0, 'overview', zeroblob(32)); \
             INSERT INTO audit_log (batch_id, case_id, at, actor, action, prev_hash, hash) \
             VALUES ('b', 41, 0, 'ingest', 'case.received', x'00', x'00'); \
             UPDATE sqlite_sequence SET seq = 50 WHERE name = 'cases';",
        )
        .execute(&mut *tx)
        .await
        .expect("v7 rows");
        tx.commit().await.expect("commit v7");

        sqlite(&pool).await.expect("migrates to the newest schema");

        let kept: (i64, String, String, i64) = sqlx::query_as(
            "SELECT id, camera_id, decided_plate, stage_attempts FROM cases WHERE id = 41",
        )
        .fetch_one(&pool)
        .await
        .expect("the case is kept");
        assert_eq!(kept, (41, "cam-1".into(), "01KG1".into(), 3));
        assert_no_dangling_references(&pool).await;
        // The sequence goes on from the old ids, and a case may now have no camera.
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO cases (event_id, camera_id, captured_at, received_at, kind, state, \
             enforceable, fingerprint, event) VALUES ('r-1', NULL, 1, 2, 'phone', 'approved', \
             1, zeroblob(32), '{}') RETURNING id",
        )
        .fetch_one(&pool)
        .await
        .expect("a case without a camera");
        assert_eq!(id, 51, "ids are never handed out twice");
        // References are still enforced against the new table.
        assert!(
            sqlx::query("INSERT INTO case_frames VALUES (999, 0, 'overview', zeroblob(32))")
                .execute(&pool)
                .await
                .is_err()
        );
        let indexes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases' \
             AND name IN ('cases_state', 'cases_camera', 'cases_plate', 'cases_captured_at', \
             'cases_sightings', 'cases_officer_report')",
        )
        .fetch_one(&pool)
        .await
        .expect("indexes");
        assert_eq!(indexes, 6);
        pool.close().await;
    }

    /// 0018 gives the refund requests before it their amounts — the money taken less
    /// its excess — and queues the excess of payments before it, once, on SQLite's
    /// rebuilt table.
    #[tokio::test]
    async fn sqlite_portal_contacts_before_v27_go_with_what_was_queued_only_to_them() {
        let (_dir, pool) = sqlite_at(26).await;
        sqlx::raw_sql(
            "INSERT INTO cameras (camera_id, public_key, device_serial, site_id, site_lat_e6, \
             site_lon_e6, site_address, site_direction, site_lane, registered_at) \
             VALUES ('cam-1', zeroblob(32), 'SER-1', 's', 0, 0, 'a', 'n', 1, 0); \
             INSERT INTO cases (id, event_id, camera_id, captured_at, received_at, kind, state, \
             plate, enforceable, fingerprint, event) \
             VALUES (7, 'e-7', 'cam-1', 1, 2, 'speeding', 'issued', '01KG1', 1, \
             zeroblob(32), '{}'); \
             INSERT INTO evidence_blobs (sha256, segment, byte_offset, byte_len) \
             VALUES (zeroblob(32), 'seg', 0, 10); \
             INSERT INTO resolution_numbers VALUES (7, 'BSK', 2026, 1); \
             INSERT INTO resolutions (number, case_id, payment_code, jurisdiction, article, \
             units, amount_minor, discounted_minor, currency, issued_at, pdf_sha256, signature, \
             signature_key_id, signer) VALUES ('KG-BSK-2026-0000001', 7, '112600100000000019', \
             'kg', 'a', 50, 500000, 250000, 'KGS', 0, zeroblob(32), x'00', 'k', 'issuer:x'); \
             INSERT INTO owner_lookups (case_id, outcome, owner_kind, owner_id, vehicle, \
             looked_up_at) VALUES (7, 'found', 'person', 'P1', '{}', 0); \
             INSERT INTO owner_contacts (id, owner_id, channel, address, added_at, added_by) \
             VALUES (1, 'P1', 'sms', '+996555000001', 0, 'portal'), \
             (2, 'P1', 'sms', '+996555000002', 0, 'clerk-1'), \
             (3, 'P1', 'email', 'a@mail.kg', 0, 'portal'); \
             INSERT INTO deliveries (id, resolution_number, case_id, channel, address, state, \
             created_at) VALUES \
             (1, 'KG-BSK-2026-0000001', 7, 'sms', '+996555000001', 'queued', 0), \
             (2, 'KG-BSK-2026-0000001', 7, 'sms', '+996555000002', 'queued', 0), \
             (3, 'KG-BSK-2026-0000001', 7, 'email', 'a@mail.kg', 'sent', 0);",
        )
        .execute(&pool)
        .await
        .expect("v26 rows");

        sqlite(&pool).await.expect("migrates to the newest schema");

        let contacts: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, added_by, plate_key FROM owner_contacts ORDER BY id")
                .fetch_all(&pool)
                .await
                .expect("contacts");
        assert_eq!(contacts, [(2, "clerk-1".to_owned(), String::new())]);
        let deliveries: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, state FROM deliveries ORDER BY id")
                .fetch_all(&pool)
                .await
                .expect("deliveries");
        assert_eq!(
            deliveries,
            [
                (1, "failed".to_owned()),
                (2, "queued".to_owned()),
                (3, "sent".to_owned())
            ]
        );
    }

    /// 0035 rebuilds SQLite's `violation_subscriptions` so that no id is given twice:
    /// the rows come through, and the next id is above every one a notice went to
    /// (subscription 9 ended before the rebuild, its notice still queued).
    #[tokio::test]
    async fn sqlite_subscriptions_after_v35_never_take_an_id_a_notice_went_to() {
        let (_dir, pool) = sqlite_at(34).await;
        sqlx::raw_sql(
            "INSERT INTO cameras (camera_id, public_key, device_serial, site_id, site_lat_e6, \
             site_lon_e6, site_address, site_direction, site_lane, registered_at) \
             VALUES ('cam-1', zeroblob(32), 'SER-1', 's', 0, 0, 'a', 'n', 1, 0); \
             INSERT INTO cases (id, event_id, camera_id, captured_at, received_at, kind, state, \
             plate, enforceable, fingerprint, event) \
             VALUES (7, 'e-7', 'cam-1', 1, 2, 'speeding', 'issued', '01KG1', 1, \
             zeroblob(32), '{}'); \
             INSERT INTO evidence_blobs (sha256, segment, byte_offset, byte_len) \
             VALUES (zeroblob(32), 'seg', 0, 10); \
             INSERT INTO resolution_numbers VALUES (7, 'BSK', 2026, 1); \
             INSERT INTO resolutions (number, case_id, payment_code, jurisdiction, article, \
             units, amount_minor, discounted_minor, currency, issued_at, pdf_sha256, signature, \
             signature_key_id, signer) VALUES ('KG-BSK-2026-0000001', 7, '112600100000000019', \
             'kg', 'a', 50, 500000, 250000, 'KGS', 0, zeroblob(32), x'00', 'k', 'issuer:x'); \
             INSERT INTO deliveries (id, resolution_number, case_id, channel, address, state, \
             created_at) VALUES \
             (1, 'KG-BSK-2026-0000001', 7, 'portal', 'subscription:9', 'queued', 0); \
             INSERT INTO violation_subscriptions (id, client, pin, plate, plate_key, \
             unique_number, created_at, xroad_id) VALUES \
             (3, 'c', 'P1', '01KG1', '011', 'n-3', 0, 'x-3'), \
             (5, 'c', 'P2', '01KG2', '012', 'n-5', 0, 'x-5');",
        )
        .execute(&pool)
        .await
        .expect("v34 rows");

        sqlite(&pool).await.expect("migrates to the newest schema");

        let ids: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, unique_number FROM violation_subscriptions ORDER BY id")
                .fetch_all(&pool)
                .await
                .expect("subscriptions");
        assert_eq!(ids, [(3, "n-3".to_owned()), (5, "n-5".to_owned())]);
        let next: (i64,) = sqlx::query_as(
            "INSERT INTO violation_subscriptions (client, pin, plate, plate_key, \
             unique_number, created_at, xroad_id) VALUES ('c', 'P3', '01KG3', '013', 'n', 0, 'x') \
             RETURNING id",
        )
        .fetch_one(&pool)
        .await
        .expect("a new subscription");
        assert_eq!(next.0, 10);
    }

    #[tokio::test]
    async fn sqlite_refunds_before_v18_get_their_amounts_and_excess_once() {
        let (_dir, pool) = sqlite_at(17).await;
        sqlx::raw_sql(
            "INSERT INTO cameras (camera_id, public_key, device_serial, site_id, site_lat_e6, \
             site_lon_e6, site_address, site_direction, site_lane, registered_at) \
             VALUES ('cam-1', zeroblob(32), 'SER-1', 's', 0, 0, 'a', 'n', 1, 0); \
             INSERT INTO cases (id, event_id, camera_id, captured_at, received_at, kind, state, \
             plate, enforceable, fingerprint, event) \
             VALUES (7, 'e-7', 'cam-1', 1, 2, 'speeding', 'annulled', '01KG1', 1, \
             zeroblob(32), '{}'); \
             INSERT INTO evidence_blobs VALUES (zeroblob(32), 'seg', 0, 10); \
             INSERT INTO resolution_numbers VALUES (7, 'BSK', 2026, 1); \
             INSERT INTO resolutions (number, case_id, payment_code, jurisdiction, article, \
             units, amount_minor, discounted_minor, currency, issued_at, pdf_sha256, signature, \
             signature_key_id, signer) VALUES ('KG-BSK-2026-0000001', 7, '112600100000000019', \
             'kg', 'a', 50, 500000, 250000, 'KGS', 0, zeroblob(32), x'00', 'k', 'issuer:x'); \
             INSERT INTO payments (id, resolution_number, case_id, channel, source, \
             external_id, amount_minor, currency, paid_at, posted_at, posted_by, from_state, \
             to_state, excess_minor, reversed_at) VALUES \
             (1, 'KG-BSK-2026-0000001', 7, 'api', 'p', 'x-1', 300000, 'KGS', 0, 0, 'api', \
              'delivered', 'paid_discounted', 50000, NULL), \
             (2, 'KG-BSK-2026-0000001', 7, 'api', 'p', 'x-2', 400000, 'KGS', 0, 0, 'api', \
              'paid_discounted', 'paid_discounted', 400000, 5); \
             INSERT INTO refund_requests (id, case_id, resolution_number, cause, detail, \
             requested_at, requested_by, state) VALUES (3, 7, 'KG-BSK-2026-0000001', \
             'annulled', 'appeal 1 annulled the resolution', 9, 'supervisor-1', 'queued');",
        )
        .execute(&pool)
        .await
        .expect("v17 rows");

        sqlite(&pool).await.expect("migrates to the newest schema");

        let requests: Vec<(i64, String, Option<i64>, i64, String, String)> = sqlx::query_as(
            "SELECT id, cause, payment_id, amount_minor, currency, state FROM refund_requests \
             ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .expect("requests");
        assert_eq!(
            requests,
            [
                (
                    3,
                    "annulled".into(),
                    None,
                    250_000,
                    "KGS".into(),
                    "queued".into()
                ),
                (
                    4,
                    "excess".into(),
                    Some(1),
                    50_000,
                    "KGS".into(),
                    "queued".into()
                ),
            ],
            "the annulled fine's 2,500 and its 500 excess, each once; the reversed \
             payment's none"
        );
        assert_no_dangling_references(&pool).await;
        pool.close().await;
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for list in [SQLITE, POSTGRES] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            }
        }
        assert_eq!(
            SQLITE.len(),
            POSTGRES.len(),
            "both backends share one schema history"
        );
    }

    #[test]
    fn a_changed_or_unknown_migration_is_refused() {
        let good: Vec<(i64, Vec<u8>)> = SQLITE.iter().map(|m| (m.version, checksum(m))).collect();
        assert!(pending(SQLITE, &good).expect("ledger matches").is_empty());
        assert_eq!(
            pending(SQLITE, &[]).expect("empty ledger").len(),
            SQLITE.len()
        );
        // A database from before a migration gets just the newer ones.
        let older = vec![(1, checksum(&SQLITE[0]))];
        let todo = pending(SQLITE, &older).expect("older ledger");
        assert_eq!(
            todo.iter().map(|m| m.version).collect::<Vec<_>>(),
            (2..=SQLITE.len() as i64).collect::<Vec<_>>()
        );
        let changed = vec![(1, vec![0u8; 32])];
        assert!(pending(SQLITE, &changed).is_err());
        let newer = vec![(1, checksum(&SQLITE[0])), (999, vec![0u8; 32])];
        assert!(pending(SQLITE, &newer).is_err());
    }
}
