//! `store export`, `store import` and `store verify` of both servers: every record of a store
//! written to a file and read back into another store, to move a deployment from the embedded
//! store to PostgreSQL (or back, or to a new database) or to keep a copy; and every record read
//! and decoded, to check a store.
//!
//! The file is JSON lines, owner-only (0600: it holds password hashes, MAC keys and sealed
//! tokens): a header naming the format and the server, one line per record
//! (`{"tree", "key", "value"}`, the value in base64url since records are bytes), and a last
//! line with the count. An import reads and checks the whole file first (the header, every
//! line, the count, so a truncated or foreign file changes nothing), refuses a store that
//! already holds records, marks the store, writes every record, makes the writes durable and
//! unmarks it: the servers refuse a marked store, and the next import completes it.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{Store, Tree};
use crate::{Error, Result};

/// The operator's `store` subcommand of both servers.
#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Write every record to a file (0600), to import into another store. It may run while the
    /// server serves (an older sled store excepted: it holds the store's lock) and writes one
    /// snapshot of the store: every record as it was when the export started.
    Export {
        /// The file to write (it must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Read a file of `store export` into the configured store, which must hold no records
    /// (start no server on it before).
    Import {
        /// The file to read.
        #[arg(long)]
        from: PathBuf,
    },
    /// Read every record of every tree and check that it decodes; exits non-zero naming the
    /// records that do not (the embedded store also refuses to open when it lost its records).
    Verify,
    /// Write a consistent copy of the embedded store to a new file (0600) while the server
    /// runs; restore it as `store/records.sqlite` of an empty data directory's store.
    Backup {
        /// The file to write (it must not exist).
        #[arg(long)]
        to: PathBuf,
    },
}

const FORMAT: &str = "e2ei-store-export";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    server: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    tree: String,
    key: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    records: u64,
}

/// Opens the store of `config` in `data_dir` for the command and runs it, returning what to
/// tell the operator. An import holds the embedded store's serving lock, so no server serves a
/// store half imported; every other command wants a store that exists (a mistyped data
/// directory is not taken for an empty store).
pub fn open_and_run(
    command: &StoreCommand,
    config: &super::StoreConfig,
    data_dir: &Path,
    server: &str,
) -> Result<String> {
    let store = match command {
        StoreCommand::Import { .. } => config.open_to_import(data_dir, server)?,
        _ => config.open_existing(data_dir, server)?,
    };
    run(command, store.as_ref(), server)
}

/// Runs the command on `store` for the server named `server` (`authz`, `acme`), returning
/// what to tell the operator.
pub fn run(command: &StoreCommand, store: &dyn Store, server: &str) -> Result<String> {
    match command {
        StoreCommand::Export { to } => {
            let count = export(store, server, to)?;
            Ok(format!("exported {count} records to {}", to.display()))
        }
        StoreCommand::Import { from } => {
            let count = import(store, server, from)?;
            Ok(format!("imported {count} records from {}", from.display()))
        }
        StoreCommand::Verify => {
            let engine = store.check_engine()?;
            let (trees, records) = verify(store)?;
            let mut said =
                format!("verified {records} records in {trees} trees: every one reads and decodes");
            if let Some(engine) = engine {
                said.push_str("; ");
                said.push_str(&engine);
            }
            Ok(said)
        }
        StoreCommand::Backup { to } => {
            store.backup(to)?;
            Ok(format!("backed the store up to {}", to.display()))
        }
    }
}

/// At most this many bad records are named.
const NAMED: usize = 20;

/// Reads every record of `store` and decodes it as JSON (every record both servers write is
/// JSON): the number of trees and records, or the records that failed.
pub fn verify(store: &dyn Store) -> Result<(usize, u64)> {
    let (mut records, mut bad) = (0u64, Vec::new());
    let trees = store.for_each_record(&mut |name, key, value| {
        records += 1;
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&value) {
            bad.push(format!("{name}/{key}: {e}"));
        }
        Ok(())
    })?;
    if bad.is_empty() {
        return Ok((trees, records));
    }
    let count = bad.len();
    bad.truncate(NAMED);
    Err(Error::Storage(format!(
        "{count} of {records} records do not decode: {}",
        bad.join("; ")
    )))
}

/// Writes every record of `store` to `to` (0600, written whole or not at all).
pub fn export(store: &dyn Store, server: &str, to: &Path) -> Result<u64> {
    if to.exists() {
        return Err(Error::Config(format!(
            "{} exists; export writes a new file",
            to.display()
        )));
    }
    let mut out = json_line(&Header {
        format: FORMAT.into(),
        version: 1,
        server: server.into(),
    })?;
    let mut count = 0u64;
    store.for_each_record(&mut |name, key, value| {
        out.extend(json_line(&Line {
            tree: name.to_owned(),
            key,
            value: URL_SAFE_NO_PAD.encode(value),
        })?);
        count += 1;
        Ok(())
    })?;
    out.extend(json_line(&Trailer { records: count })?);
    crate::files::write_private(to, &out)?;
    Ok(count)
}

/// Reads a file written by [`export`] into an empty `store`.
pub fn import(store: &dyn Store, server: &str, from: &Path) -> Result<u64> {
    let text = crate::files::read_private(from)?;
    let text = String::from_utf8(text)
        .map_err(|_| Error::Config(format!("{}: not UTF-8", from.display())))?;
    let records = parse(&text, server)
        .map_err(|why| Error::Config(format!("{}: {why}; nothing imported", from.display())))?;
    let interrupted = store.get(IMPORT, "pending")?.is_some();
    let held = store.tree_names()?;
    if !held.is_empty() && !interrupted {
        return Err(Error::Config(format!(
            "the store already holds records (trees {}); import into an empty store",
            held.join(", ")
        )));
    }
    // Marked first and unmarked last: a store an import did not finish is refused by the
    // servers ([`refuse_unfinished_import`]) and taken by the next import.
    store.put(IMPORT, "pending", b"{}")?;
    store.flush()?;
    // One `Tree` per name, not per record (a named tree is kept for the process).
    let mut trees: std::collections::HashMap<&str, Tree> = std::collections::HashMap::new();
    for (name, key, value) in &records {
        let tree = *trees
            .entry(name.as_str())
            .or_insert_with(|| Tree::named(name.clone()));
        store.put(tree, key, value)?;
    }
    store.flush()?;
    store.take(IMPORT, "pending")?;
    store.flush()?;
    Ok(records.len() as u64)
}

/// The mark of an import in progress (never exported: its name starts with `__`).
const IMPORT: Tree = Tree::new("__import");

/// Refuses to serve a store that an import did not finish (the servers call it at start).
pub fn refuse_unfinished_import(store: &dyn Store) -> Result<()> {
    if store.get(IMPORT, "pending")?.is_some() {
        return Err(Error::Config(
            "an import into this store did not finish: run `store import` with the same file \
             again before starting the server"
                .into(),
        ));
    }
    Ok(())
}

type Records = Vec<(String, String, Vec<u8>)>;

/// Every record of an export file, or why the file is not a whole export of `server`.
fn parse(text: &str, server: &str) -> std::result::Result<Records, String> {
    let mut lines = text.lines();
    let header: Header = lines
        .next()
        .and_then(|line| serde_json::from_str(line).ok())
        .ok_or("not a store export (no header)")?;
    if header.format != FORMAT || header.version != 1 {
        return Err(format!(
            "format {} version {} is not one this server reads",
            header.format, header.version
        ));
    }
    if header.server != server {
        return Err(format!(
            "an export of the {} server, not of the {server} server",
            header.server
        ));
    }
    let mut records = Vec::new();
    for (number, line) in lines.enumerate() {
        if let Ok(record) = serde_json::from_str::<Line>(line) {
            // A store's own bookkeeping (its identity, an import's mark) is never exported,
            // so never imported: such a line would overwrite it.
            if record.tree.starts_with("__") {
                return Err(format!(
                    "line {}: the tree {} belongs to a store, not to its records",
                    number + 2,
                    record.tree
                ));
            }
            let value = URL_SAFE_NO_PAD
                .decode(&record.value)
                .map_err(|_| format!("line {}: the value is not base64url", number + 2))?;
            records.push((record.tree, record.key, value));
            continue;
        }
        let trailer: Trailer = serde_json::from_str(line)
            .map_err(|_| format!("line {} is not a record", number + 2))?;
        if trailer.records != records.len() as u64 {
            return Err(format!(
                "it says {} records and holds {}",
                trailer.records,
                records.len()
            ));
        }
        if text.lines().count() != number + 2 {
            return Err("lines follow the end".into());
        }
        return Ok(records);
    }
    Err("it ends before its last line (a truncated copy?)".into())
}

fn json_line<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut line = super::encode(value)?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[test]
    fn an_export_imports_whole_and_a_damaged_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let from = SledStore::open(&dir.path().join("from")).unwrap();
        let binary: Vec<u8> = (0..=255).collect();
        for i in 0..2500 {
            from.put(Tree::new("users"), &format!("u{i:05}"), &binary)
                .unwrap();
        }
        from.put(Tree::new("clients"), "c", b"{}").unwrap();
        let file = dir.path().join("export.jsonl");
        assert_eq!(export(&from, "authz", &file).unwrap(), 2501);
        let mode = std::fs::metadata(&file).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert!(export(&from, "authz", &file).is_err(), "overwrote a file");

        let text = std::fs::read_to_string(&file).unwrap();
        let damaged = [
            // Truncated: the last line gone.
            text[..text.trim_end().rfind('\n').unwrap() + 1].to_owned(),
            // A line dropped, the count kept.
            text.replacen(&text.lines().nth(5).unwrap().to_string(), "", 1)
                .replacen("\n\n", "\n", 1),
            text.replacen("\"server\":\"authz\"", "\"server\":\"acme\"", 1),
        ];
        for (n, bad) in damaged.iter().enumerate() {
            let path = dir.path().join(format!("bad{n}"));
            crate::files::write_private(&path, bad.as_bytes()).unwrap();
            let to = SledStore::open(&dir.path().join(format!("to{n}"))).unwrap();
            assert!(import(&to, "authz", &path).is_err(), "damage {n} imported");
            assert!(to.tree_names().unwrap().is_empty(), "damage {n} wrote");
        }

        let to = SledStore::open(&dir.path().join("to")).unwrap();
        assert_eq!(import(&to, "authz", &file).unwrap(), 2501);
        assert_eq!(to.scan_prefix(Tree::new("users"), "").unwrap().len(), 2500);
        assert_eq!(
            to.get(Tree::new("users"), "u02499").unwrap().unwrap(),
            binary
        );
        assert!(
            import(&to, "authz", &file).is_err(),
            "imported into a full store"
        );
    }

    #[test]
    fn verify_reads_every_record_and_names_the_ones_that_do_not_decode() {
        let dir = tempfile::tempdir().unwrap();
        let sled = SledStore::open(dir.path()).unwrap();
        let store: &dyn Store = &sled;
        for i in 0..1500 {
            store
                .put_json(Tree::new("users"), &format!("u{i:05}"), &i)
                .unwrap();
        }
        store.put_json(Tree::new("clients"), "c", &"x").unwrap();
        assert_eq!(verify(store).unwrap(), (2, 1501));
        store
            .put(Tree::new("users"), "u00700", b"{\"cut off")
            .unwrap();
        let refused = verify(store).unwrap_err().to_string();
        assert!(refused.contains("1 of 1501 records"), "{refused}");
        assert!(refused.contains("users/u00700"), "{refused}");
    }

    #[test]
    fn an_export_line_for_a_stores_own_tree_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("forged.jsonl");
        let value = URL_SAFE_NO_PAD.encode(b"someone else's id");
        crate::files::write_private(
            &file,
            format!(
                "{{\"format\":\"{FORMAT}\",\"version\":1,\"server\":\"authz\"}}\n\
                 {{\"tree\":\"users\",\"key\":\"u\",\"value\":\"{value}\"}}\n\
                 {{\"tree\":\"__store_identity\",\"key\":\"id\",\"value\":\"{value}\"}}\n\
                 {{\"records\":2}}\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let store = crate::store::SqliteStore::open(&dir.path().join("to")).unwrap();
        let refused = import(&store, "authz", &file).unwrap_err().to_string();
        assert!(refused.contains("__store_identity"), "{refused}");
        assert!(store.tree_names().unwrap().is_empty());
    }

    #[test]
    fn commands_other_than_import_refuse_a_data_directory_without_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let typo = dir.path().join("dat");
        let config = crate::store::StoreConfig::default();
        let refused = open_and_run(&StoreCommand::Verify, &config, &typo, "authz")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("there is no store in"), "{refused}");
        assert!(!typo.exists(), "nothing was made");
    }

    #[test]
    fn an_import_is_refused_while_a_server_serves_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        crate::files::private_dir(&data).unwrap();
        let config = crate::store::StoreConfig::default();
        let _serving = config.open_to_serve(&data, "authz").unwrap();
        let refused = config
            .open_to_import(&data, "authz")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(refused.contains("served by another process"), "{refused}");
    }

    /// A store that fails every write after the first `allowed`.
    #[derive(Debug)]
    struct FailingAfter {
        inner: SledStore,
        allowed: std::sync::atomic::AtomicUsize,
    }

    impl Store for FailingAfter {
        fn get(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>> {
            self.inner.get(tree, key)
        }
        fn put(&self, tree: Tree, key: &str, value: &[u8]) -> Result<()> {
            let left = self.allowed.load(std::sync::atomic::Ordering::SeqCst);
            if left == 0 {
                return Err(Error::Unavailable("the database went away".into()));
            }
            self.allowed
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            self.inner.put(tree, key, value)
        }
        fn compare_and_swap(
            &self,
            tree: Tree,
            key: &str,
            expected: Option<&[u8]>,
            new: Option<&[u8]>,
        ) -> Result<bool> {
            self.inner.compare_and_swap(tree, key, expected, new)
        }
        fn take(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>> {
            self.inner.take(tree, key)
        }
        fn scan_prefix(&self, tree: Tree, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
            self.inner.scan_prefix(tree, prefix)
        }
        fn scan_page(
            &self,
            tree: Tree,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<(String, Vec<u8>)>> {
            self.inner.scan_page(tree, after, limit)
        }
        fn flush(&self) -> Result<()> {
            self.inner.flush()
        }
        fn writes(&self) -> u64 {
            self.inner.writes()
        }
        fn shared(&self) -> bool {
            false
        }
        fn written_beside_the_server(&self) -> bool {
            false
        }
        fn tree_names(&self) -> Result<Vec<String>> {
            self.inner.tree_names()
        }
    }

    #[test]
    fn an_interrupted_import_is_refused_for_serving_and_completed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let from = SledStore::open(&dir.path().join("from")).unwrap();
        for i in 0..3000 {
            from.put(Tree::new("users"), &format!("u{i:05}"), b"{}")
                .unwrap();
        }
        let file = dir.path().join("export.jsonl");
        export(&from, "authz", &file).unwrap();
        let to = FailingAfter {
            inner: SledStore::open(&dir.path().join("to")).unwrap(),
            allowed: std::sync::atomic::AtomicUsize::new(1000),
        };
        assert!(
            import(&to, "authz", &file).is_err(),
            "the store failed mid-way"
        );
        let refused = refuse_unfinished_import(&to).unwrap_err().to_string();
        assert!(refused.contains("did not finish"), "{refused}");
        to.allowed
            .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(import(&to, "authz", &file).unwrap(), 3000);
        refuse_unfinished_import(&to).unwrap();
        assert_eq!(to.scan_prefix(Tree::new("users"), "").unwrap().len(), 3000);
        assert!(
            import(&to, "authz", &file).is_err(),
            "a finished import is not repeated"
        );
    }
}
