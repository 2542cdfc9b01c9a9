//! A PostgreSQL schema of its own for one [`crate::TestCloud`]: created at start, selected
//! through the URL's `options[search_path]`, dropped (with everything in it) on drop, so runs
//! never collide and nothing is left behind.

use std::str::FromStr;

use rand::RngCore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::HarnessError;

/// A schema `voltline_e2e_<random>` in the database at `base`.
pub struct PgSchema {
    base: String,
    schema: String,
}

impl PgSchema {
    /// Creates a fresh schema in the database at `base` (`postgres://...`).
    pub async fn create(base: &str) -> Result<PgSchema, HarnessError> {
        PgConnectOptions::from_str(base).map_err(|e| {
            HarnessError::Postgres(format!("'{base}' is not a PostgreSQL URL: {e}"))
        })?;
        let mut bytes = [0u8; 8];
        rand::rng().fill_bytes(&mut bytes);
        let schema = format!(
            "voltline_e2e_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut conn = PgConnection::connect(base)
            .await
            .map_err(|e| HarnessError::Postgres(format!("cannot connect to {base}: {e}")))?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .map_err(|e| HarnessError::Postgres(format!("cannot create schema {schema}: {e}")))?;
        conn.close().await.ok();
        Ok(PgSchema {
            base: base.to_owned(),
            schema,
        })
    }

    /// The database URL that selects the schema.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options[search_path]={}", self.base, self.schema)
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.schema
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        // Drop may run inside a runtime: clean up on a thread of our own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&base).await.ok()?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        });
        let _ = done.join();
    }
}
