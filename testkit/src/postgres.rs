//! A database of a test's (or a benchmark's) own on a PostgreSQL server, made fresh and
//! dropped when done, so that no run sees another's rows.

use anyhow::{Context, Result};
use rand::Rng;

/// The server tests use: `KOZOMOL_TEST_POSTGRES_URL`, by default the machine's.
pub fn server_url() -> String {
    std::env::var("KOZOMOL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub struct ScratchPostgres {
    admin_url: String,
    name: String,
    /// The new database's URL.
    pub url: String,
}

impl ScratchPostgres {
    /// Makes `{prefix}_{random}` on the server at `admin_url`.
    pub async fn create(admin_url: &str, prefix: &str) -> Result<ScratchPostgres> {
        let name = format!("{prefix}_{:016x}", rand::thread_rng().gen::<u64>());
        let admin = sqlx::PgPool::connect(admin_url)
            .await
            .with_context(|| format!("PostgreSQL at {admin_url}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await?;
        admin.close().await;
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let url = match base.rfind('/') {
            Some(slash) if slash > "postgres://".len() => format!("{}/{name}", &base[..slash]),
            _ => format!("{base}/{name}"),
        };
        Ok(ScratchPostgres {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// Drops the database, closing whatever is still connected to it.
    pub async fn drop_now(self) -> Result<()> {
        let admin = sqlx::PgPool::connect(&self.admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        Ok(())
    }
}
