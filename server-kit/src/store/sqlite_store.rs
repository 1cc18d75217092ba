//! The embedded store: one SQLite database in the data directory (`store/records.sqlite`), the
//! same table of records as the PostgreSQL store, for one server process and the operator's
//! commands beside it. Why SQLite and not sled: docs/storage-engines.md.
//!
//! - **Atomicity.** Compare-and-swap and `take` are single conditional statements, as on
//!   PostgreSQL; every write goes through one connection, so the process never waits on
//!   SQLite's file lock except for an operator command writing at the same moment.
//! - **Durability.** The database is in WAL mode with `synchronous = NORMAL`: a write appends
//!   to the log without waiting for the disk. [`Store::flush`] commits a counter with
//!   `synchronous = FULL`, which syncs the log and with it every write before it, so the group
//!   commit ([`crate::group_commit`]) pays one `fsync` for a batch of requests. A write that
//!   was never flushed may be lost to a power cut; one that was flushed is not.
//! - **A full disk.** A write that finds no space fails (SQLite rolls its statement back) and is
//!   answered [`Error::Unavailable`]; the next write after space returns succeeds. Nothing
//!   sticks, and no restart is needed.
//! - **Damage.** Every record carries a checksum of its tree, key and value, checked at every
//!   read; the database's structure is checked at open (`PRAGMA integrity_check` for a server) and the store's
//!   identity ([`super::identity`]) catches a database file replaced or truncated to nothing.
//!   A damaged store is refused with the file's name and what to do, never served shortened.
//! - **One server.** A server holds `serving.lock` while it runs, so a second server on the same
//!   data directory is refused; operator commands open the store beside it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::{Store, Tree};
use crate::{Error, Result};

/// The database file in the store's directory.
pub const DB_FILE: &str = "records.sqlite";

/// The file a serving process holds locked.
const SERVING_LOCK: &str = "serving.lock";

/// The schema this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// Connections for reads; writes have one of their own.
const READERS: usize = 4;

/// How long a statement waits for SQLite's lock held by another process (an operator
/// command), and how long opening waits for a serving lock a closing store of this process
/// still holds.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The tables. `key` is a BLOB so that keys sort by their bytes, as the other stores do.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS records (
        tree TEXT NOT NULL,
        key BLOB NOT NULL,
        value BLOB NOT NULL,
        sum BLOB NOT NULL,
        PRIMARY KEY (tree, key)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS meta (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
";

/// The embedded store: one SQLite database in the data directory.
pub struct SqliteStore {
    file: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    writes: AtomicU64,
    /// The serving lock, held while this store serves (released when it is dropped).
    _serving: Option<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("file", &self.file)
            .field("serving", &self._serving.is_some())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store in the directory `dir`, for an operator command: a server
    /// may be serving it at the same time.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_as(dir, false)
    }

    /// Opens the store in `dir` for serving it: refused while another process serves it.
    pub fn open_to_serve(dir: &Path) -> Result<Self> {
        Self::open_as(dir, true)
    }

    fn open_as(dir: &Path, serving: bool) -> Result<Self> {
        crate::files::private_dir(dir)?;
        let serving = serving.then(|| lock_for_serving(dir)).transpose()?;
        let file = dir.join(DB_FILE);
        create_private(&file)?;
        let writer = connect(&file)?;
        prepare_schema(&writer, &file)?;
        check_structure(&writer, &file, serving.is_some())?;
        let readers = (0..READERS)
            .map(|_| connect(&file).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        // SQLite makes its log files with the database file's mode; this covers a store made
        // by an older build or copied in by hand.
        crate::files::restrict_tree(dir)?;
        let store = Self {
            file,
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            writes: AtomicU64::new(0),
            _serving: serving,
        };
        super::identity::check(&store, dir, "the SQLite files")?;
        // What opening wrote is flushed: a group commit starts with nothing to do.
        store.writes.store(0, Ordering::SeqCst);
        Ok(store)
    }

    /// `VACUUM INTO` the new empty file `to`, synced, then opened on its own and checked: it
    /// passes SQLite's integrity check and holds this store's identity (so it is a copy of this
    /// store, not an empty database).
    fn copy_into(&self, to: &Path) -> Result<()> {
        let path = to.to_str().ok_or_else(|| {
            Error::Config(format!("{}: a backup path must be UTF-8", to.display()))
        })?;
        self.reader()
            .execute("VACUUM INTO ?1", params![path])
            .map_err(|e| self.classify(e))?;
        File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(|e| crate::files::io_error(to, e))?;
        let copy = Connection::open_with_flags(to, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| classify(to, e))?;
        let problems =
            pragma_rows(&copy, "PRAGMA integrity_check(20)").map_err(|e| classify(to, e))?;
        let identity = |conn: &Connection| -> rusqlite::Result<Option<Vec<u8>>> {
            conn.query_row(
                "SELECT value FROM records WHERE tree = ?1 AND key = CAST('id' AS BLOB)",
                params![super::identity::IDENTITY.name()],
                |row| row.get(0),
            )
            .optional()
        };
        let copied = identity(&copy).map_err(|e| classify(to, e))?;
        let ours = identity(&self.reader()).map_err(|e| self.classify(e))?;
        if problems != ["ok"] || copied.is_none() || copied != ours {
            return Err(Error::Storage(format!(
                "the backup {} is not a whole copy of the store ({})",
                to.display(),
                problems.join("; ")
            )));
        }
        Ok(())
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A free read connection, or the next one in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..READERS {
            if let Ok(conn) = self.readers[(start + i) % READERS].try_lock() {
                return conn;
            }
        }
        self.readers[start % READERS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The write connection, with the write about to be made counted first: a reader that
    /// sees the write sees it counted, so its group-commit wait covers it; a flush that reads
    /// the count waits for this guard, so it runs after the write. A write that fails or swaps
    /// nothing is counted all the same (at worst one flush more).
    fn writing(&self) -> MutexGuard<'_, Connection> {
        let conn = self.writer();
        self.writes.fetch_add(1, Ordering::SeqCst);
        conn
    }

    /// The value of a record read back, if its checksum holds.
    fn checked(&self, tree: &str, key: &[u8], value: Vec<u8>, sum: &[u8]) -> Result<Vec<u8>> {
        if checksum(tree, key, &value) == sum {
            return Ok(value);
        }
        let what = format!(
            "the record {:?} of {tree} fails its checksum",
            String::from_utf8_lossy(key)
        );
        tracing::error!(file = %self.file.display(), %what, "store damaged");
        Err(damaged(&self.file, &what))
    }

    fn classify(&self, e: rusqlite::Error) -> Error {
        classify(&self.file, e)
    }

    /// Rows of `(key, value, sum)` as checked entries.
    fn entries(
        &self,
        tree: Tree,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let conn = self.reader();
        let mut statement = conn.prepare_cached(sql).map_err(|e| self.classify(e))?;
        let rows = statement
            .query_map(params, |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(|e| self.classify(e))?;
        let mut entries = Vec::new();
        for row in rows {
            let (key, value, sum) = row.map_err(|e| self.classify(e))?;
            let value = self.checked(tree.name(), &key, value, &sum)?;
            entries.push((String::from_utf8_lossy(&key).into_owned(), value));
        }
        Ok(entries)
    }
}

impl Store for SqliteStore {
    fn get(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>> {
        let row = {
            let conn = self.reader();
            let mut statement = conn
                .prepare_cached("SELECT value, sum FROM records WHERE tree = ?1 AND key = ?2")
                .map_err(|e| self.classify(e))?;
            statement
                .query_row(params![tree.name(), key.as_bytes()], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
                })
                .optional()
                .map_err(|e| self.classify(e))?
        };
        row.map(|(value, sum)| self.checked(tree.name(), key.as_bytes(), value, &sum))
            .transpose()
    }

    fn put(&self, tree: Tree, key: &str, value: &[u8]) -> Result<()> {
        let sum = checksum(tree.name(), key.as_bytes(), value);
        self.writing()
            .prepare_cached(
                "INSERT INTO records (tree, key, value, sum) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value, sum = excluded.sum",
            )
            .and_then(|mut s| s.execute(params![tree.name(), key.as_bytes(), value, sum]))
            .map_err(|e| self.classify(e))?;
        Ok(())
    }

    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        let (name, key) = (tree.name(), key.as_bytes());
        let conn = self.writing();
        let changed = |sql: &str, params: &[&dyn rusqlite::ToSql]| {
            conn.prepare_cached(sql)
                .and_then(|mut s| s.execute(params))
                .map(|rows| rows == 1)
        };
        let swapped = match (expected, new) {
            (None, Some(new)) => changed(
                "INSERT INTO records (tree, key, value, sum) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tree, key) DO NOTHING",
                params![name, key, new, checksum(name, key, new)],
            ),
            (Some(old), Some(new)) => changed(
                "UPDATE records SET value = ?3, sum = ?4 WHERE tree = ?1 AND key = ?2 AND value = ?5",
                params![name, key, new, checksum(name, key, new), old],
            ),
            (Some(old), None) => changed(
                "DELETE FROM records WHERE tree = ?1 AND key = ?2 AND value = ?3",
                params![name, key, old],
            ),
            // "Absent, and leave it absent": true when there is nothing.
            (None, None) => conn
                .prepare_cached("SELECT 1 FROM records WHERE tree = ?1 AND key = ?2")
                .and_then(|mut s| s.exists(params![name, key]))
                .map(|exists| !exists),
        }
        .map_err(|e| self.classify(e))?;
        drop(conn);
        Ok(swapped)
    }

    fn take(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>> {
        let taken = self
            .writing()
            .prepare_cached("DELETE FROM records WHERE tree = ?1 AND key = ?2 RETURNING value, sum")
            .and_then(|mut s| {
                s.query_row(params![tree.name(), key.as_bytes()], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
                })
                .optional()
            })
            .map_err(|e| self.classify(e))?;
        taken
            .map(|(value, sum)| self.checked(tree.name(), key.as_bytes(), value, &sum))
            .transpose()
    }

    fn scan_prefix(&self, tree: Tree, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let start = prefix.as_bytes();
        match prefix_end(start) {
            Some(end) => self.entries(
                tree,
                "SELECT key, value, sum FROM records
                 WHERE tree = ?1 AND key >= ?2 AND key < ?3 ORDER BY key",
                params![tree.name(), start, end],
            ),
            None => self.entries(
                tree,
                "SELECT key, value, sum FROM records WHERE tree = ?1 AND key >= ?2 ORDER BY key",
                params![tree.name(), start],
            ),
        }
    }

    fn scan_page(
        &self,
        tree: Tree,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match after {
            Some(after) => self.entries(
                tree,
                "SELECT key, value, sum FROM records WHERE tree = ?1 AND key > ?2
                 ORDER BY key LIMIT ?3",
                params![tree.name(), after.as_bytes(), limit],
            ),
            None => self.entries(
                tree,
                "SELECT key, value, sum FROM records WHERE tree = ?1 ORDER BY key LIMIT ?2",
                params![tree.name(), limit],
            ),
        }
    }

    /// Syncs the log, and with it every write before: a counter committed with
    /// `synchronous = FULL`.
    fn flush(&self) -> Result<()> {
        let conn = self.writer();
        conn.execute_batch("PRAGMA synchronous = FULL")
            .map_err(|e| self.classify(e))?;
        let committed = conn
            .prepare_cached(
                "INSERT INTO meta (name, value) VALUES ('flushes', 1)
                 ON CONFLICT (name) DO UPDATE SET value = value + 1",
            )
            .and_then(|mut s| s.execute([]));
        let restored = conn.execute_batch("PRAGMA synchronous = NORMAL");
        committed.map_err(|e| self.classify(e))?;
        restored.map_err(|e| self.classify(e))?;
        Ok(())
    }

    fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn shared(&self) -> bool {
        false
    }

    fn written_beside_the_server(&self) -> bool {
        true
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        let conn = self.reader();
        let mut statement = conn
            .prepare_cached("SELECT DISTINCT tree FROM records ORDER BY tree")
            .map_err(|e| self.classify(e))?;
        let names = statement
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.classify(e))?;
        // The store's identity belongs to these files, not to the records.
        Ok(names.into_iter().filter(|n| !n.starts_with("__")).collect())
    }

    /// One statement reads every record, so all from one snapshot of the database (a read
    /// transaction in WAL mode), while the server goes on writing. On a connection of its own,
    /// so that `each` may use the store's.
    fn for_each_record(&self, each: &mut super::EachRecord<'_>) -> Result<usize> {
        let conn = connect(&self.file)?;
        let mut statement = conn
            .prepare("SELECT tree, key, value, sum FROM records ORDER BY tree, key")
            .map_err(|e| self.classify(e))?;
        let mut rows = statement.query([]).map_err(|e| self.classify(e))?;
        let mut trees: Option<String> = None;
        let mut count = 0;
        while let Some(row) = rows.next().map_err(|e| self.classify(e))? {
            let read = |i| row.get::<_, Vec<u8>>(i).map_err(|e| self.classify(e));
            let tree: String = row.get(0).map_err(|e| self.classify(e))?;
            // The store's identity belongs to these files, not to the records.
            if tree.starts_with("__") {
                continue;
            }
            let key = read(1)?;
            let value = self.checked(&tree, &key, read(2)?, &read(3)?)?;
            if trees.as_deref() != Some(tree.as_str()) {
                count += 1;
                trees = Some(tree.clone());
            }
            each(&tree, String::from_utf8_lossy(&key).into_owned(), value)?;
        }
        Ok(count)
    }

    /// Writes a consistent copy of the whole store to `to` (a new file, 0600, synced), while
    /// the store keeps serving: `store backup`. The copy is a store of its own: put it in an
    /// empty `store/` directory as `records.sqlite` to restore it.
    fn backup(&self, to: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let to = backup_path(to)?;
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&to)
            .map_err(|e| crate::files::io_error(&to, e))?;
        drop(created);
        let copied = self.copy_into(&to);
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&to);
            return Err(e);
        }
        crate::files::sync_parent(&to)
    }

    /// The whole database (`PRAGMA integrity_check`) and every record's checksum.
    fn check_engine(&self) -> Result<Option<String>> {
        let conn = self.reader();
        let problems =
            pragma_rows(&conn, "PRAGMA integrity_check(20)").map_err(|e| self.classify(e))?;
        if problems != ["ok"] {
            return Err(damaged(&self.file, &problems.join("; ")));
        }
        let mut statement = conn
            .prepare_cached("SELECT tree, key, value, sum FROM records")
            .map_err(|e| self.classify(e))?;
        let mut rows = statement.query([]).map_err(|e| self.classify(e))?;
        let mut count = 0;
        while let Some(row) = rows.next().map_err(|e| self.classify(e))? {
            let tree: String = row.get(0).map_err(|e| self.classify(e))?;
            let key: Vec<u8> = row.get(1).map_err(|e| self.classify(e))?;
            let value: Vec<u8> = row.get(2).map_err(|e| self.classify(e))?;
            let sum: Vec<u8> = row.get(3).map_err(|e| self.classify(e))?;
            self.checked(&tree, &key, value, &sum)?;
            count += 1;
        }
        Ok(Some(format!(
            "SQLite's integrity check passed; {count} checksums hold"
        )))
    }
}

/// The checksum of a record: SHA-256 over its tree, key and value (each length-prefixed),
/// first 16 bytes. A record changed on disk, or moved under another key, fails it.
fn checksum(tree: &str, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [tree.as_bytes(), key, value] {
        digest.update(&(part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    digest.finish().as_ref()[..16].to_vec()
}

/// The first byte string after every string starting with `prefix`; none when there is none
/// (the prefix is empty or all 0xFF).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The backup's path made absolute (so SQLite never reads it as a `file:` URI), its directory
/// resolved.
fn backup_path(to: &Path) -> Result<PathBuf> {
    let name = to
        .file_name()
        .ok_or_else(|| Error::Config(format!("{}: name a file for the backup", to.display())))?;
    let dir = match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir = dir
        .canonicalize()
        .map_err(|e| crate::files::io_error(dir, e))?;
    Ok(dir.join(name))
}

/// Creates the database file owner-only before SQLite opens it (SQLite would make it with the
/// process umask, and its log files with the same mode).
fn create_private(file: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(file)
        .map(drop)
        .map_err(|e| crate::files::io_error(file, e))
}

/// Takes the serving lock of the store in `dir`, waiting up to [`LOCK_WAIT`] for a store of
/// this process that is being closed.
fn lock_for_serving(dir: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(SERVING_LOCK);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| crate::files::io_error(&path, e))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(Error::Storage(format!(
                    "{}: the store is served by another process (is a server running on this \
                     data directory?)",
                    dir.display()
                )));
            }
            Err(e) => return Err(crate::files::io_error(&path, e.into())),
        }
    }
}

/// One connection to the database, set up for this store.
fn connect(file: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(file, e))?;
    conn.busy_timeout(LOCK_WAIT)
        .map_err(|e| classify(file, e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| classify(file, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Storage(format!(
            "{}: SQLite refused its write-ahead log (journal mode {mode})",
            file.display()
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA cell_size_check = ON;
         PRAGMA foreign_keys = OFF;",
    )
    .map_err(|e| classify(file, e))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Makes the tables of a new store; refuses a store written by a newer build.
fn prepare_schema(conn: &Connection, file: &Path) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| classify(file, e))?;
    if version > SCHEMA_VERSION {
        return Err(Error::Storage(format!(
            "{} holds schema version {version}, newer than this build's {SCHEMA_VERSION}: run \
             the newer build, or restore a backup made by this one",
            file.display()
        )));
    }
    if version < SCHEMA_VERSION {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            classify(file, e)
        })?;
    }
    Ok(())
}

/// Checks the database's structure: pages lost to a truncation or overwritten in the middle
/// show here. A server about to serve runs the whole `PRAGMA integrity_check`, which also finds
/// keys out of order in the tree's inner pages (damage that would hide records from a lookup
/// by key while a scan still finds them); an operator command beside it runs the quicker
/// `quick_check`.
fn check_structure(conn: &Connection, file: &Path, whole: bool) -> Result<()> {
    let pragma = if whole {
        "PRAGMA integrity_check(20)"
    } else {
        "PRAGMA quick_check(20)"
    };
    let problems = pragma_rows(conn, pragma).map_err(|e| classify(file, e))?;
    if problems == ["ok"] {
        return Ok(());
    }
    Err(damaged(file, &problems.join("; ")))
}

fn pragma_rows(conn: &Connection, pragma: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare(pragma)?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
    rows.collect()
}

fn disk_full(file: &Path) -> Error {
    Error::Unavailable(format!(
        "{}: the disk is full; nothing was changed, and writes succeed again once there is \
         space",
        file.display()
    ))
}

/// Whether the filesystem holding `file` has no block left for this process.
fn no_space_left(file: &Path) -> bool {
    let dir = file.parent().unwrap_or(Path::new("."));
    rustix::fs::statvfs(dir).is_ok_and(|fs| fs.f_bavail == 0)
}

/// The error for a damaged database: its file, what is wrong, what to do.
fn damaged(file: &Path, what: &str) -> Error {
    Error::Storage(format!(
        "the store {} is damaged ({what}): stop the server, keep the damaged files aside, and \
         restore the store from a backup (`store backup`) or an export (`store import`); see \
         docs/operations.md",
        file.display()
    ))
}

/// SQLite's failures as the store's errors: a full disk or another process's lock may pass,
/// damage does not.
fn classify(file: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => disk_full(file),
        // SQLite says only "disk I/O error" when its log index cannot grow.
        Some(ErrorCode::SystemIoFailure) if no_space_left(file) => disk_full(file),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Unavailable(format!(
            "{}: another process held the store's lock too long",
            file.display()
        )),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => damaged(file, &e.to_string()),
        _ => Error::Storage(format!("{}: {e}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::identity::IDENTITY_FILE;

    const USERS: Tree = Tree::new("users");

    fn filled(dir: &Path, records: usize) {
        let store = SqliteStore::open(dir).unwrap();
        for i in 0..records {
            store.put(USERS, &format!("u{i:04}"), &[7; 512]).unwrap();
        }
        store.flush().unwrap();
    }

    #[test]
    fn the_embedded_store_keeps_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::store_contract(&SqliteStore::open(dir.path()).unwrap());
    }

    #[test]
    fn a_walk_through_the_store_reads_one_snapshot_while_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::walk_reads_one_snapshot(&SqliteStore::open(dir.path()).unwrap());
    }

    #[test]
    fn flushed_writes_survive_reopening_and_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 3);
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.get(USERS, "u0002").unwrap().unwrap(), vec![7; 512]);
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", entry.path().display());
        }
    }

    #[test]
    fn prefix_ends_follow_bytes() {
        assert_eq!(prefix_end(b"u1/"), Some(b"u10".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn a_second_server_on_the_same_store_is_refused_but_operator_commands_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let serving = SqliteStore::open_to_serve(dir.path()).unwrap();
        let refused = SqliteStore::open_to_serve(dir.path())
            .unwrap_err()
            .to_string();
        assert!(refused.contains("served by another process"), "{refused}");
        let operator = SqliteStore::open(dir.path()).unwrap();
        operator.put(USERS, "alice", b"1").unwrap();
        operator.flush().unwrap();
        assert_eq!(
            serving.get(USERS, "alice").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        drop(serving);
        SqliteStore::open_to_serve(dir.path()).unwrap();
    }

    #[test]
    fn a_record_changed_on_disk_fails_its_checksum_when_read() {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 10);
        {
            // What a flipped byte inside a record looks like to SQLite: a valid page.
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute(
                "UPDATE records SET value = zeroblob(512) WHERE key = CAST('u0003' AS BLOB)",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        assert!(store.get(USERS, "u0002").unwrap().is_some());
        let refused = store.get(USERS, "u0003").unwrap_err().to_string();
        assert!(
            refused.contains("u0003") && refused.contains("checksum"),
            "{refused}"
        );
        assert!(refused.contains(DB_FILE), "{refused}");
        assert!(
            store.scan_prefix(USERS, "u").is_err(),
            "a scan passes it too"
        );
        assert!(store.check_engine().is_err());
    }

    #[test]
    fn a_database_cut_short_is_refused_at_open_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 400);
        let file = dir.path().join(DB_FILE);
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(
            len > 64 * 1024,
            "the records were checkpointed into the file: {len}"
        );
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let refused = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            refused.contains("is damaged") && refused.contains(DB_FILE),
            "{refused}"
        );
    }

    /// A byte flipped in any page of the file, one page at a time, opened as a server opens
    /// it: the store is refused at open, or the read of a damaged record fails; it never
    /// answers a shortened or changed set of records, by scan or by key, and never takes a
    /// second record under a key it holds.
    #[test]
    fn a_byte_flipped_in_any_page_is_refused_or_fails_a_read_and_never_shortens_the_records() {
        const PAGE: u64 = 4096;
        let original = tempfile::tempdir().unwrap();
        filled(original.path(), 300);
        {
            let store = SqliteStore::open(original.path()).unwrap();
            store
                .writer()
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        let expected = SqliteStore::open(original.path())
            .unwrap()
            .scan_prefix(USERS, "")
            .unwrap();
        let bytes = std::fs::read(original.path().join(DB_FILE)).unwrap();
        let pages = bytes.len() as u64 / PAGE;
        assert!(pages > 40, "{pages} pages");
        let (mut refused, mut failed_reads, mut unharmed) = (0, 0, 0);
        // Five places in every page (its header, its cell pointers, its middle, its end), and
        // every 4th byte of the table's root page (page 2), whose cells are the keys that
        // lookups by key follow.
        let places = (0..pages)
            .flat_map(|page| [12, 40, 100, PAGE / 2, PAGE - 50].map(|at| page * PAGE + at))
            .chain((PAGE..2 * PAGE).step_by(4));
        for at in places {
            {
                let parent = tempfile::tempdir().unwrap();
                let copy = parent.path().join("store");
                crate::files::private_dir(&copy).unwrap();
                let mut damaged = bytes.clone();
                damaged[at as usize] ^= 0x5a;
                std::fs::write(copy.join(DB_FILE), &damaged).unwrap();
                std::fs::copy(
                    original.path().join(IDENTITY_FILE),
                    copy.join(IDENTITY_FILE),
                )
                .unwrap();
                let store = match SqliteStore::open_to_serve(&copy) {
                    Ok(store) => store,
                    Err(e) => {
                        let e = e.to_string();
                        assert!(
                            e.contains("is damaged") || e.contains("lost its records"),
                            "byte {at}: {e}"
                        );
                        refused += 1;
                        continue;
                    }
                };
                let scanned = store.scan_prefix(USERS, "");
                let by_key: Result<Vec<_>> = expected
                    .iter()
                    .map(|(key, _)| store.get(USERS, key).map(|v| (key.clone(), v)))
                    .collect();
                match (scanned, by_key) {
                    (Ok(read), Ok(by_key)) => {
                        assert_eq!(read, expected, "byte {at} changed what a scan serves");
                        for (key, value) in by_key {
                            let value = value.unwrap_or_else(|| panic!("byte {at} hid {key}"));
                            assert_eq!(value, vec![7; 512], "byte {at} changed {key}");
                            assert!(
                                !store
                                    .compare_and_swap(USERS, &key, None, Some(b"again"))
                                    .unwrap_or(false),
                                "byte {at}: {key} taken twice"
                            );
                        }
                        unharmed += 1;
                    }
                    _ => failed_reads += 1,
                }
            }
        }
        // Both guards at work (the structure check at open, the checksums at read); the rest
        // of the flips fell in unused space.
        assert!(
            refused > 0 && failed_reads > 0,
            "{refused} refused at open, {failed_reads} failed reads, {unharmed} unharmed"
        );
    }

    #[test]
    fn a_database_emptied_or_replaced_is_refused_through_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 10);
        for name in [DB_FILE, "records.sqlite-wal", "records.sqlite-shm"] {
            let path = dir.path().join(name);
            if path.exists() {
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
        }
        let refused = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("has lost its records"), "{refused}");
        assert!(dir.path().join(IDENTITY_FILE).exists());
        assert!(SqliteStore::open(dir.path()).is_err(), "refused again");
    }

    #[test]
    fn a_header_that_is_not_sqlite_is_refused_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 10);
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            // Everything into the main file, so the header is what is read.
            store
                .writer()
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        let file = dir.path().join(DB_FILE);
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[..16].copy_from_slice(b"not a database!\0");
        std::fs::write(&file, bytes).unwrap();
        let refused = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            refused.contains("is damaged") && refused.contains(DB_FILE),
            "{refused}"
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 1);
        Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        let refused = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("newer than this build"), "{refused}");
    }

    /// A relative path that SQLite would read as a URI (`file:…`) is still the file named.
    #[test]
    fn a_backup_path_that_looks_like_a_uri_is_the_file_it_names() {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 5);
        let store = SqliteStore::open(dir.path()).unwrap();
        let copy = tempfile::tempdir().unwrap();
        // Each test is its own process under nextest; the directory is this test's.
        std::env::set_current_dir(copy.path()).unwrap();
        store.backup(Path::new("file:leak.sqlite")).unwrap();
        let written = copy.path().join("file:leak.sqlite");
        let copied = Connection::open_with_flags(&written, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
            .query_row("SELECT count(*) FROM records", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap();
        assert_eq!(copied, 6, "five records and the identity");
        assert!(!copy.path().join("leak.sqlite").exists());
    }

    #[test]
    fn a_backup_is_a_whole_store_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 50);
        let store = SqliteStore::open(dir.path()).unwrap();
        let copy = tempfile::tempdir().unwrap();
        let to = copy.path().join("backup.sqlite");
        store.backup(&to).unwrap();
        assert!(
            store.backup(&to).is_err(),
            "an existing file is never overwritten"
        );
        let restored = copy.path().join("restored");
        crate::files::private_dir(&restored).unwrap();
        std::fs::rename(&to, restored.join(DB_FILE)).unwrap();
        let restored = SqliteStore::open(&restored).unwrap();
        let checked = restored.check_engine().unwrap().unwrap();
        assert!(
            checked.contains("51 checksums"),
            "50 records and the identity: {checked}"
        );
        assert_eq!(restored.scan_prefix(USERS, "u").unwrap().len(), 50);
    }
}
