//! Bulk inserts on SQLite: multi-row `VALUES` statements, [`CHUNK_ROWS`] rows each (SQLite
//! allows 32,766 parameters per statement). Every full chunk has the same text, so the
//! prepared statement is cached and reused; only the last, shorter chunk is prepared anew.
//!
//! The placeholders are anonymous `?`, not `$n`: SQLite treats `$n` as a *named* parameter
//! and the driver looks each name up by a linear scan, which made a 6,000-parameter statement
//! quadratic (10x slower per row at 500 rows per statement, measured).

use std::sync::OnceLock;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr, SqliteConnection};

pub(crate) use super::ingest::ReadingRow;
use super::StoreResult;

/// Rows per multi-row statement (12 parameters each).
const CHUNK_ROWS: usize = 1_000;
const READING_COLUMNS: usize = 12;
/// SQLite's limit on parameters per statement.
const SQLITE_MAX_PARAMETERS: usize = 32_766;
const _: () = assert!(CHUNK_ROWS * READING_COLUMNS <= SQLITE_MAX_PARAMETERS);

const READING_INSERT: &str =
    "INSERT INTO meter_readings (site_id, seq, pile_code, connector, serial, measured_at, \
     import_mwh, export_mwh, power_w, soc_pct, amount, recorded_at) VALUES ";
const READING_CONFLICT: &str = " ON CONFLICT (site_id, seq) DO NOTHING";

/// `INSERT ... VALUES (?,?,...), (?,?,...), ...` for `rows` rows.
fn reading_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(READING_INSERT.len() + rows * 60);
    sql.push_str(READING_INSERT);
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..READING_COLUMNS {
            if c > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
    sql.push_str(READING_CONFLICT);
    sql
}

fn full_chunk_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| reading_sql(CHUNK_ROWS)).as_str()
}

/// Inserts meter readings (duplicates by (site, seq) are skipped).
pub(crate) async fn insert_readings(
    conn: &mut SqliteConnection,
    site: &str,
    rows: &[ReadingRow],
) -> StoreResult<()> {
    for chunk in rows.chunks(CHUNK_ROWS) {
        // The SQL is built from constants and row counts only; every value is a bound parameter.
        let sql: SqlStr = if chunk.len() == CHUNK_ROWS {
            full_chunk_sql().into_sql_str()
        } else {
            AssertSqlSafe(reading_sql(chunk.len())).into_sql_str()
        };
        let mut q = sqlx::query(sql);
        for r in chunk {
            q = q
                .bind(site.to_owned())
                .bind(r.seq)
                .bind(r.pile.clone())
                .bind(r.connector)
                .bind(r.serial.clone())
                .bind(r.measured_at)
                .bind(r.import_mwh)
                .bind(r.export_mwh)
                .bind(r.power_w)
                .bind(r.soc_pct)
                .bind(r.amount)
                .bind(r.recorded_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records sequences committed above the site's ack.
pub(crate) async fn insert_pending(
    conn: &mut SqliteConnection,
    site: &str,
    seqs: &[i64],
) -> StoreResult<()> {
    for &seq in seqs {
        sqlx::query(
            "INSERT INTO edge_pending_seqs (site_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(site)
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_have_one_anonymous_parameter_per_value() {
        let sql = reading_sql(2);
        assert!(sql.ends_with("VALUES (?,?,?,?,?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (site_id, seq) DO NOTHING"), "{sql}");
    }
}
