//! Storage behind a narrow key-value trait, so the embedded sled store and the PostgreSQL
//! store are interchangeable. Single-use objects (nonces, codes) are redeemed with
//! [`Store::take`] or [`Store::compare_and_swap`], which are atomic; anything a response
//! promises is made durable with [`Store::flush`] before the response is sent.
//!
//! Each server names its collections as [`Tree`] constants in its own storage module.
//!
//! Three implementations: [`SqliteStore`] (embedded, one server process, the default),
//! [`SledStore`] (the older embedded engine, still opened for data directories made with it)
//! and [`PostgresStore`] (a database several replicas share); [`StoreConfig::open`] picks one.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

mod config;
mod identity;
mod postgres_liveness;
mod postgres_schema;
mod postgres_store;
mod postgres_tls;
mod sled_store;
mod sqlite_store;
pub mod transfer;

pub use config::StoreConfig;
pub use postgres_store::PostgresStore;
pub use sled_store::{LOCK_WAIT, SledStore};
pub use sqlite_store::SqliteStore;

/// Whether the embedded store in `dir` was made by sled (the engine before SQLite): sled keeps
/// a `conf` file beside its database.
pub fn is_sled(dir: &std::path::Path) -> bool {
    dir.join("conf").exists()
}

/// Opens the embedded store in `dir` for an operator command or a tool: sled's when the
/// directory holds one, SQLite's otherwise (a new store is always SQLite's).
pub fn open_embedded(dir: &std::path::Path) -> Result<std::sync::Arc<dyn Store>> {
    Ok(if is_sled(dir) {
        std::sync::Arc::new(SledStore::open(dir)?)
    } else {
        std::sync::Arc::new(SqliteStore::open(dir)?)
    })
}

/// What [`Store::for_each_record`] calls with each record: its tree's name, key and value.
pub type EachRecord<'a> = dyn FnMut(&str, String, Vec<u8>) -> Result<()> + Send + 'a;

/// How many records a walk through a whole store ([`Store::for_each_record`]) reads at a time.
pub const RECORDS_PER_READ: usize = 1000;

/// A named collection of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree(&'static str);

impl Tree {
    /// A collection called `name`.
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// A collection named at run time, for tools that go through every tree of a store
    /// ([`transfer`]); the name is kept for the rest of the process.
    pub fn named(name: String) -> Self {
        Self(Box::leak(name.into_boxed_str()))
    }
}

/// A durable, atomic key-value store.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Reads a value.
    fn get(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>>;
    /// Writes a value.
    fn put(&self, tree: Tree, key: &str, value: &[u8]) -> Result<()>;
    /// Atomically replaces `expected` (None = absent) by `new` (None = delete); false when
    /// the stored value was not `expected`.
    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool>;
    /// Atomically removes and returns a value: the redemption of a single-use object.
    fn take(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>>;
    /// All entries whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, tree: Tree, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;
    /// Up to `limit` entries in key order, starting after the key `after` (from the first key
    /// when `None`): a large tree read a page at a time.
    fn scan_page(
        &self,
        tree: Tree,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<()>;
    /// How many writes (put, swap, take) this store has applied since it was opened: a flush
    /// that starts after reading `n` makes the first `n` durable (see [`crate::group_commit`]).
    fn writes(&self) -> u64;
    /// Whether other processes (replicas of the server) may use the same records at the same
    /// time, so that nothing a request depends on may live in one process's memory.
    fn shared(&self) -> bool;
    /// Whether other processes (operator commands, replicas) may write to the store while a
    /// server serves it, so that a server must read again what they change (its signing keys):
    /// SQLite and PostgreSQL, not sled.
    fn written_beside_the_server(&self) -> bool;
    /// The names of the trees that hold records, in order.
    fn tree_names(&self) -> Result<Vec<String>>;
    /// Calls `each` with every record (its tree's name, its key, its value), tree by tree in
    /// key order, and returns how many trees there were: what `store export` and `store
    /// verify` read. SQLite and PostgreSQL read them all from one state of the store (one
    /// snapshot), however the servers write meanwhile; this default reads a page at a time.
    fn for_each_record(&self, each: &mut EachRecord<'_>) -> Result<usize> {
        let names = self.tree_names()?;
        for name in &names {
            let tree = Tree::named(name.clone());
            let mut after: Option<String> = None;
            loop {
                let page = self.scan_page(tree, after.as_deref(), RECORDS_PER_READ)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                for (key, value) in page {
                    each(name, key, value)?;
                }
            }
        }
        Ok(names.len())
    }
    /// Checks what the engine keeps beyond the records (its pages, its indexes) and every
    /// record's checksum, where it has them: what was checked, or none when the engine has no
    /// check of its own (`store verify`).
    fn check_engine(&self) -> Result<Option<String>> {
        Ok(None)
    }
    /// Writes a consistent copy of the whole store to the new file `to` while it serves
    /// (`store backup`).
    fn backup(&self, to: &std::path::Path) -> Result<()> {
        let _ = to;
        Err(Error::Config(
            "this store has no backup command: back PostgreSQL up with its own tools (pg_dump, \
             base backups); for an older sled store stop the server and copy data_dir/store, or \
             use `store export` (docs/operations.md)"
                .into(),
        ))
    }
}

impl dyn Store + '_ {
    /// Reads and decodes a JSON record.
    pub fn get_json<T: DeserializeOwned>(&self, tree: Tree, key: &str) -> Result<Option<T>> {
        self.get(tree, key)?.map(|bytes| decode(&bytes)).transpose()
    }

    /// Encodes and writes a JSON record.
    pub fn put_json<T: Serialize>(&self, tree: Tree, key: &str, value: &T) -> Result<()> {
        self.put(tree, key, &encode(value)?)
    }

    /// Writes a JSON record only if the key is absent.
    pub fn insert_new_json<T: Serialize>(&self, tree: Tree, key: &str, value: &T) -> Result<bool> {
        self.compare_and_swap(tree, key, None, Some(&encode(value)?))
    }

    /// Removes a record and decodes what was there.
    pub fn take_json<T: DeserializeOwned>(&self, tree: Tree, key: &str) -> Result<Option<T>> {
        self.take(tree, key)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Decodes every record under a prefix.
    pub fn scan_json<T: DeserializeOwned>(&self, tree: Tree, prefix: &str) -> Result<Vec<T>> {
        self.scan_prefix(tree, prefix)?
            .iter()
            .map(|(_, bytes)| decode(bytes))
            .collect()
    }
}

/// A record together with the exact bytes it was read from, so that a later
/// [`replace_json`](Store::compare_and_swap) succeeds only if nobody changed it in between.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The decoded record.
    pub value: T,
    raw: Vec<u8>,
}

impl dyn Store + '_ {
    /// Reads a record for a later compare-and-swap.
    pub fn get_versioned<T: DeserializeOwned>(
        &self,
        tree: Tree,
        key: &str,
    ) -> Result<Option<Versioned<T>>> {
        self.get(tree, key)?
            .map(|raw| {
                Ok(Versioned {
                    value: decode(&raw)?,
                    raw,
                })
            })
            .transpose()
    }

    /// Replaces a record read with [`get_versioned`](Self::get_versioned) by `new`, only if it
    /// is still byte-for-byte what was read; false when another writer got there first.
    pub fn replace_json<T: Serialize>(
        &self,
        tree: Tree,
        key: &str,
        old: &Versioned<T>,
        new: &T,
    ) -> Result<bool> {
        self.compare_and_swap(tree, key, Some(&old.raw), Some(&encode(new)?))
    }
}

/// A secret every process using `store` shares, stored under `name` in `tree`: the one
/// stored, or `fresh` (random bytes the caller drew) stored now when there is none. When
/// several processes start at once, the first to store one wins and the others read it.
pub fn shared_secret(store: &dyn Store, tree: Tree, name: &str, fresh: Vec<u8>) -> Result<Vec<u8>> {
    if let Some(stored) = store.get(tree, name)? {
        return Ok(stored);
    }
    if store.compare_and_swap(tree, name, None, Some(&fresh))? {
        store.flush()?;
        return Ok(fresh);
    }
    store
        .get(tree, name)?
        .ok_or_else(|| Error::Storage(format!("the shared secret {name} vanished")))
}

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Storage(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("corrupt record: {e}")))
}
