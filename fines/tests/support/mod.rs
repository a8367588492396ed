//! The databases the stage tests run on: SQLite in a temporary folder, and a fresh
//! database of its own on the PostgreSQL server at `KOZOMOL_TEST_POSTGRES_URL` (by
//! default postgres://postgres@127.0.0.1:5432/test), dropped when the test ends.

use std::sync::Arc;

// Not every test binary that shares this module issues resolutions.
#[allow(dead_code)]
pub mod issued;

use chrono::NaiveDate;
use kozomol_core::{CalibrationCertificate, CameraId, Site};
use kozomol_store::{CameraRegistration, Store};

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store and what keeps its database alive.
pub struct Db {
    pub store: Arc<dyn Store>,
    /// A folder that lives as long as the database (for evidence); not every test
    /// binary that shares this module uses it.
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
    /// The database's URL, for what no store method does yet.
    #[allow(dead_code)]
    pub url: String,
}

impl Db {
    pub async fn new(backend: Backend) -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("k.db").display());
                let store = kozomol_store::connect(&url).await.expect("sqlite store");
                Db {
                    store,
                    dir,
                    postgres: None,
                    url,
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var("KOZOMOL_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
                let name = format!("kozomol_f_{}", uuid::Uuid::now_v7().simple());
                let admin = sqlx::PgPool::connect(&admin_url)
                    .await
                    .expect("PostgreSQL for tests (set KOZOMOL_TEST_POSTGRES_URL)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create test database");
                admin.close().await;
                let base = admin_url.split('?').next().unwrap_or(&admin_url);
                let url = match base.rfind('/') {
                    Some(slash) if slash > "postgres://".len() => {
                        format!("{}/{name}", &base[..slash])
                    }
                    _ => format!("{base}/{name}"),
                };
                let store = kozomol_store::connect(&url).await.expect("postgres store");
                Db {
                    store,
                    dir,
                    postgres: Some((admin_url, name)),
                    url,
                }
            }
        }
    }
}

impl Db {
    /// Puts a case in `state` directly: payments (which move cases to the paid states)
    /// are not part of these stages.
    #[allow(dead_code)]
    pub async fn force_state(&self, case_id: kozomol_core::CaseId, state: kozomol_core::CaseState) {
        let sql = format!(
            "UPDATE cases SET state = '{}' WHERE id = {}",
            state.as_str(),
            case_id.0
        );
        self.execute(sql.clone(), sql).await;
    }

    /// Dates a resolution's issue back to `at`: a penalty imposed before the offences
    /// a test then issues, which were all captured on one day.
    #[allow(dead_code)]
    pub async fn force_issued_at(&self, number: &str, at: chrono::DateTime<chrono::Utc>) {
        self.execute(
            format!(
                "UPDATE resolutions SET issued_at = '{}' WHERE number = '{number}'",
                at.to_rfc3339()
            ),
            format!(
                "UPDATE resolutions SET issued_at = {} WHERE number = '{number}'",
                at.timestamp_millis()
            ),
        )
        .await;
    }

    /// Points a resolution at other stored bytes as its PDF (bytes the evidence store
    /// holds under `sha256` at `location`): a document that no longer reads.
    #[allow(dead_code)]
    pub async fn force_resolution_pdf(
        &self,
        number: &str,
        sha256: [u8; 32],
        location: &kozomol_store::FrameLocation,
    ) {
        let hex = hex::encode(sha256);
        let (segment, offset, len) = (&location.segment, location.offset, location.len);
        self.execute(
            format!(
                "INSERT INTO evidence_blobs (sha256, segment, byte_offset, byte_len) \
                 VALUES ('\\x{hex}', '{segment}', {offset}, {len}); \
                 UPDATE resolutions SET pdf_sha256 = '\\x{hex}' WHERE number = '{number}'"
            ),
            format!(
                "INSERT INTO evidence_blobs (sha256, segment, byte_offset, byte_len) \
                 VALUES (X'{hex}', '{segment}', {offset}, {len}); \
                 UPDATE resolutions SET pdf_sha256 = X'{hex}' WHERE number = '{number}'"
            ),
        )
        .await;
    }

    /// Runs one statement, written for each backend, for what no store method does.
    #[allow(dead_code)]
    pub async fn execute(&self, postgres: String, sqlite: String) {
        if self.postgres.is_some() {
            let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
            sqlx::raw_sql(sqlx::AssertSqlSafe(postgres))
                .execute(&pool)
                .await
                .expect("statement runs");
            pool.close().await;
        } else {
            let pool = sqlx::SqlitePool::connect(&self.url).await.expect("connect");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sqlite))
                .execute(&pool)
                .await
                .expect("statement runs");
            pool.close().await;
        }
    }

    /// A database with camera `cam-1` registered, which every test case comes from.
    pub async fn with_camera(backend: Backend) -> Db {
        let db = Db::new(backend).await;
        db.store
            .register_camera(&CameraRegistration {
                camera_id: CameraId::parse("cam-1").expect("id"),
                public_key: [1; 32],
                device_serial: "SN-1".into(),
                certificate: CalibrationCertificate {
                    number: "KG-1".into(),
                    valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
                    valid_until: NaiveDate::from_ymd_opt(2027, 1, 1).expect("date"),
                },
                site: Site {
                    id: "site-1".into(),
                    lat_e6: 42_874_621,
                    lon_e6: 74_569_762,
                    address: "Бишкек".into(),
                    direction: "east".into(),
                    lane: 1,
                },
            })
            .await
            .expect("camera");
        db
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async code; a small runtime of its own does the work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping the test database");
            rt.block_on(async {
                let admin = sqlx::PgPool::connect(&admin_url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await?;
                admin.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
    }
}
