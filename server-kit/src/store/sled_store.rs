//! The embedded store: one sled database in the data directory, for a single process.

use std::path::Path;

use super::{Store, Tree};
use crate::{Error, Result};

/// How long [`SledStore::open`] waits for a lock held by a handle of this process that is
/// being closed.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether sled refused to open because another handle holds the database's file lock.
fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// Removes snapshot files sled never finished (called when sled refused to open) (`snap.<lsn>.generating`): sled renames a
/// snapshot once it is whole and synced, so one still called `.generating` is a write that
/// was cut off (a full disk, a crash), and sled would read it as the newest snapshot and refuse
/// to open. Without it sled starts from the previous snapshot and its log, which hold
/// everything.
/// Whether it removed any.
fn remove_unfinished_snapshots(path: &Path) -> Result<bool> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Ok(false);
    };
    let mut removed = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            tracing::warn!(
                file = %entry.path().display(),
                "removing an unfinished snapshot left by an interrupted write"
            );
            crate::files::remove_durably(&entry.path())?;
            removed = true;
        }
    }
    Ok(removed)
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
        let mut repaired = false;
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
                // Only once sled itself refused (so never under a process that holds the
                // store): an unfinished snapshot is the cause sled cannot get past.
                Err(_) if !repaired && remove_unfinished_snapshots(path)? => repaired = true,
                Err(e) => {
                    return Err(Error::Storage(format!("open {}: {e}", path.display())));
                }
            }
        };
        // sled creates its files with the process umask; they hold password hashes, tokens
        // and MAC keys.
        crate::files::restrict_tree(path)?;
        let store = Self {
            db,
            writes: std::sync::atomic::AtomicU64::new(0),
        };
        super::identity::check(&store, path, "sled's files")?;
        // What opening wrote is flushed: a group commit starts with nothing to do.
        store.writes.store(0, std::sync::atomic::Ordering::SeqCst);
        Ok(store)
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

    fn shared(&self) -> bool {
        false
    }

    fn written_beside_the_server(&self) -> bool {
        false
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for name in self.db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            // sled's own default tree, which we never write, and the store's identity.
            if name.starts_with("__") {
                continue;
            }
            if !self.db.open_tree(&name).map_err(storage)?.is_empty() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::identity::IDENTITY_FILE;

    const USERS: Tree = Tree::new("users");

    #[test]
    fn the_embedded_store_keeps_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::store_contract(&SledStore::open(dir.path()).unwrap());
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

    #[test]
    fn an_unfinished_snapshot_left_by_an_interrupted_write_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.put(USERS, "k", b"v").unwrap();
            store.flush().unwrap();
        }
        // What a start on a full disk leaves: an empty snapshot that sorts after every other.
        let unfinished = dir.path().join("snap.FFFFFFFFFFFFFFFF.generating");
        std::fs::write(&unfinished, b"").unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.get(USERS, "k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(!unfinished.exists());
    }

    #[test]
    fn a_store_that_lost_its_records_is_refused_and_not_served_empty() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            for i in 0..100 {
                store.put(USERS, &format!("u{i}"), &[7; 512]).unwrap();
            }
            store.flush().unwrap();
        }
        // sled's files replaced by an empty store (what a truncated or damaged `db` opens as),
        // the identity file kept.
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if entry.file_name() != IDENTITY_FILE {
                let path = entry.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(path).unwrap();
                } else {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
        let refused = SledStore::open(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("has lost its records"), "{refused}");
        assert!(
            refused.contains(&dir.path().display().to_string()),
            "{refused}"
        );
        // Opening again refuses again: nothing was made in the meantime.
        assert!(SledStore::open(dir.path()).is_err());
    }

    #[test]
    fn a_truncated_db_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            for i in 0..100 {
                store.put(USERS, &format!("u{i}"), &[7; 512]).unwrap();
            }
            store.flush().unwrap();
        }
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("db"))
            .unwrap()
            .set_len(0)
            .unwrap();
        // sled itself opens it as an empty store, saying nothing; the identity check refuses.
        let refused = SledStore::open(dir.path())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(refused.contains("has lost its records"), "{refused}");
    }
}
