//! The PostgreSQL schema and its versioned migrations, applied when a server opens the store.
//!
//! `{schema}.schema_migrations` lists the versions applied. At open, under an advisory lock
//! (replicas starting together apply each migration once), the missing ones are applied in
//! order in one transaction; a schema at a version this build does not know (written by a
//! newer server) is refused, so an old replica never writes records a newer one reads
//! differently. A migration is never edited once released: a change is a new entry.

use tokio_postgres::Client;

use super::postgres_store::classify;
use crate::{Error, Result};

/// The migrations, in order; version `n` is `MIGRATIONS[n - 1]`. `{schema}` is replaced by
/// the schema's name.
const MIGRATIONS: &[&str] = &[
    // 1: every tree's records, ordered by key bytes (what sled orders by, and what
    // `scan_prefix` and `scan_page` rely on).
    "CREATE TABLE {schema}.records (
        tree text NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (tree, key)
    )",
];

/// The version this build brings a schema to.
pub const VERSION: usize = MIGRATIONS.len();

/// Brings `schema` up to [`VERSION`], or refuses a newer one.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<()> {
    let tx = client.transaction().await.map_err(classify)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await
        .map_err(classify)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )"
    ))
    .await
    .map_err(classify)?;
    let current: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"),
            &[],
        )
        .await
        .map_err(classify)?
        .get(0);
    let current = usize::try_from(current).unwrap_or(0);
    if current > VERSION {
        return Err(Error::Config(format!(
            "the database schema {schema} is at version {current}, newer than this server's \
             {VERSION}: a newer server has used it; run that version (or newer) of the server"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        tx.batch_execute(&migration.replace("{schema}", schema))
            .await
            .map_err(classify)?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"),
            &[&version],
        )
        .await
        .map_err(classify)?;
    }
    tx.commit().await.map_err(classify)
}

/// The advisory lock serialising migrations of one schema (FNV-1a of its name).
fn lock_key(schema: &str) -> i64 {
    let hash = format!("e2ei-schema:{schema}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}
