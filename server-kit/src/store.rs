//! Storage behind a narrow key-value trait, so the embedded sled store and a future
//! PostgreSQL store are interchangeable. Single-use objects (nonces, codes) are redeemed with
//! [`Store::take`] or [`Store::compare_and_swap`], which are atomic; anything a response
//! promises is made durable with [`Store::flush`] before the response is sent.
//!
//! Each server names its collections as [`Tree`] constants in its own storage module.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

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

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Storage(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("corrupt record: {e}")))
}

/// How long [`SledStore::open`] waits for a lock held by a handle of this process that is
/// being closed.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether sled refused to open because another handle holds the database's file lock.
fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// The embedded store: one sled database in the data directory.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    writes: std::sync::atomic::AtomicU64,
}

impl SledStore {
    /// Opens (or creates) the database at `path`.
    ///
    /// sled holds an exclusive lock on its files and releases it only when its background
    /// threads let go of the database, a moment after the last handle is dropped. A store
    /// reopened in this process right after it was closed (a restart, an operator command
    /// before `serve`, a test) waits for that release, up to [`LOCK_WAIT`]; a store that stays
    /// locked that long is in use by another process, and the error says so.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_waiting(path, LOCK_WAIT)
    }

    fn open_waiting(path: &Path, wait: std::time::Duration) -> Result<Self> {
        let deadline = std::time::Instant::now() + wait;
        let db = loop {
            match sled::open(path) {
                Ok(db) => break db,
                Err(e) if is_locked(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) if is_locked(&e) => {
                    return Err(Error::Storage(format!(
                        "open {}: the store is in use by another process (is a server \
                         running on this data directory?): {e}",
                        path.display()
                    )));
                }
                Err(e) => {
                    return Err(Error::Storage(format!("open {}: {e}", path.display())));
                }
            }
        };
        // sled creates its files with the process umask; they hold password hashes, tokens
        // and MAC keys.
        crate::files::restrict_tree(path)?;
        Ok(Self {
            db,
            writes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Counts an applied write (after it is applied, so a flush that reads the count covers it).
    fn wrote(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn tree(&self, tree: Tree) -> Result<sled::Tree> {
        self.db.open_tree(tree.name()).map_err(storage)
    }
}

/// A sled entry as an owned key and value.
fn owned_entry(entry: sled::Result<(sled::IVec, sled::IVec)>) -> Result<(String, Vec<u8>)> {
    let (k, v) = entry.map_err(storage)?;
    Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(tree)?
            .get(key)
            .map_err(storage)?
            .map(|v| v.to_vec()))
    }

    fn put(&self, tree: Tree, key: &str, value: &[u8]) -> Result<()> {
        self.tree(tree)?.insert(key, value).map_err(storage)?;
        self.wrote();
        Ok(())
    }

    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        let swapped = self
            .tree(tree)?
            .compare_and_swap(key, expected, new)
            .map_err(storage)?
            .is_ok();
        if swapped {
            self.wrote();
        }
        Ok(swapped)
    }

    fn take(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>> {
        let taken = self.tree(tree)?.remove(key).map_err(storage)?;
        if taken.is_some() {
            self.wrote();
        }
        Ok(taken.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, tree: Tree, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.tree(tree)?
            .scan_prefix(prefix)
            .map(owned_entry)
            .collect()
    }

    fn scan_page(
        &self,
        tree: Tree,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        use std::ops::Bound;
        let start = match after {
            Some(key) => Bound::Excluded(key.as_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        self.tree(tree)?
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit)
            .map(owned_entry)
            .collect()
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(storage)?;
        Ok(())
    }

    fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCES: Tree = Tree::new("nonces");
    const CODES: Tree = Tree::new("codes");
    const DEVICES: Tree = Tree::new("devices");
    const USERS: Tree = Tree::new("users");

    #[test]
    fn take_redeems_once_and_cas_guards_state() {
        let dir = tempfile::tempdir().unwrap();
        let store: Box<dyn Store> = Box::new(SledStore::open(dir.path()).unwrap());
        store.put(NONCES, "n", b"v").unwrap();
        assert_eq!(store.take(NONCES, "n").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(store.take(NONCES, "n").unwrap(), None);
        assert!(
            store
                .compare_and_swap(CODES, "c", None, Some(b"1"))
                .unwrap()
        );
        assert!(
            !store
                .compare_and_swap(CODES, "c", None, Some(b"2"))
                .unwrap()
        );
        assert!(
            store
                .compare_and_swap(CODES, "c", Some(b"1"), Some(b"2"))
                .unwrap()
        );
        store.put(DEVICES, "u1/a", b"1").unwrap();
        store.put(DEVICES, "u2/b", b"2").unwrap();
        store.put(DEVICES, "u3/c", b"3").unwrap();
        assert_eq!(store.scan_prefix(DEVICES, "u1/").unwrap().len(), 1);
        let first = store.scan_page(DEVICES, None, 2).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[1].0, "u2/b");
        let rest = store.scan_page(DEVICES, Some("u2/b"), 2).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, "u3/c");
    }

    #[test]
    fn replace_json_fails_when_the_record_changed_since_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let store: Box<dyn Store> = Box::new(SledStore::open(dir.path()).unwrap());
        store.put_json(CODES, "k", &"pending").unwrap();
        let first = store.get_versioned::<String>(CODES, "k").unwrap().unwrap();
        let second = store.get_versioned::<String>(CODES, "k").unwrap().unwrap();
        assert!(
            store
                .replace_json(CODES, "k", &first, &"valid".to_owned())
                .unwrap()
        );
        assert!(
            !store
                .replace_json(CODES, "k", &second, &"invalid".to_owned())
                .unwrap()
        );
        assert_eq!(
            store.get_json::<String>(CODES, "k").unwrap().as_deref(),
            Some("valid")
        );
    }

    #[test]
    fn flushed_writes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.put(USERS, "k", b"v").unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.get(USERS, "k").unwrap().as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn a_store_reopens_right_after_its_last_handle_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..400u32 {
            let store = SledStore::open(dir.path()).unwrap();
            for record in 0..100u32 {
                store
                    .put(USERS, &format!("{round}/{record}"), &[7; 1024])
                    .unwrap();
            }
            store.flush().unwrap();
        }
    }

    #[test]
    fn a_store_held_by_another_handle_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let _held = SledStore::open(dir.path()).unwrap();
        let refused =
            SledStore::open_waiting(dir.path(), std::time::Duration::from_millis(50)).unwrap_err();
        assert!(
            refused.to_string().contains("in use by another process"),
            "{refused}"
        );
    }
}
