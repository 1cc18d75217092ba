//! For tests and the benchmark (feature `test-support`): a throwaway PostgreSQL cluster on
//! loopback.
//!
//! [`TestPostgres::start`] runs `initdb` into a temporary directory (as the unprivileged
//! `nobody` when the tests run as root, since PostgreSQL refuses to run as root) with password
//! authentication, starts the server on a free port of 127.0.0.1 (no Unix socket), and creates
//! the database `e2ei`. Dropping it stops the server and removes the directory. The binaries
//! come from `E2EI_PG_BIN`, else the newest `/usr/lib/postgresql/N/bin` (N ≥ 15, Debian's
//! layout), else `PATH`; a machine without them fails the test with what to install.

// Test support: a failure here is a failed test, reported by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::store::{Store, StoreConfig, Tree};

/// The user PostgreSQL runs as when the tests run as root.
const NOBODY: u32 = 65534;

/// A running throwaway cluster.
#[derive(Debug)]
pub struct TestPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl TestPostgres {
    /// Initialises and starts a cluster with the database `e2ei`.
    ///
    /// # Panics
    /// When PostgreSQL is not installed or does not start (a test must fail then, not skip).
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// [`Self::start`], admitting TLS connections only (`hostssl`), with a certificate for
    /// 127.0.0.1 from a dev root ([`Self::tls_root`]).
    ///
    /// # Panics
    /// As [`Self::start`].
    pub fn start_with_tls() -> Self {
        Self::start_with(true)
    }

    /// The root the TLS certificate of a [`Self::start_with_tls`] cluster chains to.
    pub fn tls_root(&self) -> PathBuf {
        self.dir.path().join("client/tls/ca.pem")
    }

    fn start_with(tls: bool) -> Self {
        let bin = binaries();
        let dir = tempfile::Builder::new()
            .prefix("e2ei-pg-")
            .tempdir()
            .expect("temp dir");
        let as_root = rustix::process::geteuid().is_root();
        if as_root {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, test_password()).expect("password file");
        if as_root {
            std::os::unix::fs::chown(&password_file, Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        let mut cluster = Self { bin, port: 0, dir };
        cluster.run_checked(cluster.command("initdb").args([
            "-D",
            &cluster.data().display().to_string(),
            "-U",
            "postgres",
            "-A",
            "scram-sha-256",
            "--pwfile",
            &password_file.display().to_string(),
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ]));
        // A copy the test process owns (0600), for the servers' `password_file`.
        std::fs::remove_file(&password_file).expect("remove");
        let readable = cluster.password_file();
        std::fs::create_dir(readable.parent().expect("parent")).expect("mkdir");
        crate::files::write_private(&readable, test_password().as_bytes()).expect("write");
        if tls {
            cluster.require_tls(as_root);
        }
        for _ in 0..5 {
            cluster.port = free_port();
            let conf = format!(
                "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
                 max_connections = 300\n",
                cluster.port
            );
            let conf_path = cluster.data().join("postgresql.auto.conf");
            let mut text = std::fs::read_to_string(&conf_path).unwrap_or_default();
            text.push_str(&conf);
            std::fs::write(&conf_path, text).expect("conf");
            if cluster.start_server() {
                cluster.psql("CREATE DATABASE e2ei");
                return cluster;
            }
        }
        panic!("PostgreSQL did not start: {}", cluster.log());
    }

    /// Gives the server a certificate and admits only TLS connections.
    fn require_tls(&self, as_root: bool) {
        let pki = crate::tls::ensure_dev_tls(&self.dir.path().join("client"), Some("127.0.0.1"))
            .expect("dev PKI");
        for (from, to) in [(&pki.cert, "server.crt"), (&pki.key, "server.key")] {
            let to = self.data().join(to);
            std::fs::copy(from, &to).expect("copy");
            std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
            if as_root {
                std::os::unix::fs::chown(&to, Some(NOBODY), Some(NOBODY)).expect("chown");
            }
        }
        let conf = self.data().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap_or_default();
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).expect("conf");
        let hba = self.data().join("pg_hba.conf");
        let rules: String = std::fs::read_to_string(&hba)
            .expect("pg_hba.conf")
            .lines()
            .map(|line| match line.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}\n"),
                None => format!("{line}\n"),
            })
            .collect();
        std::fs::write(&hba, rules).expect("pg_hba.conf");
    }

    /// The URL of the database `e2ei` (no password: see [`Self::password_file`]).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/e2ei", self.port)
    }

    /// A 0600 file holding the password.
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("client/password")
    }

    /// A `[store]` for the database `e2ei` and `schema` (the server's default when `None`).
    pub fn store_config(&self, schema: Option<&str>) -> StoreConfig {
        StoreConfig {
            url: Some(self.url()),
            password_file: Some(self.password_file()),
            schema: schema.map(str::to_owned),
            ..StoreConfig::default()
        }
    }

    /// Runs SQL as the superuser in the database `e2ei` (before it exists: `postgres`),
    /// returning what psql printed (unaligned, tuples only).
    ///
    /// # Panics
    /// When psql fails.
    pub fn psql(&self, sql: &str) -> String {
        let database = if sql.starts_with("CREATE DATABASE") {
            "postgres"
        } else {
            "e2ei"
        };
        let output = self.run_checked(
            self.command("psql")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", database, "-X", "-q", "-A", "-t"])
                .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
                .env("PGPASSWORD", test_password()),
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Stops the server now (`immediate`: what a crash or a pulled cable looks like to the
    /// clients), keeping its data.
    pub fn stop(&self) {
        self.run_checked(self.command("pg_ctl").args([
            "-D",
            &self.data().display().to_string(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]));
    }

    /// Starts the server again after [`Self::stop`], on the same port.
    ///
    /// # Panics
    /// When it does not start.
    pub fn restart(&self) {
        assert!(
            self.start_server(),
            "PostgreSQL did not restart: {}",
            self.log()
        );
    }

    /// The postmaster's process id (its backends are its children).
    ///
    /// # Panics
    /// When the server is not running.
    pub fn server_pid(&self) -> u32 {
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid")).expect("pid file");
        pid.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("a pid")
    }

    /// Freezes the server and its backends (SIGSTOP): a database that stops answering
    /// without closing anything.
    pub fn freeze(&self) {
        self.signal(rustix::process::Signal::STOP);
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    /// Signals the server and each of its children; a child that ended since it was listed
    /// (a backend or worker that finished) is passed over.
    fn signal(&self, signal: rustix::process::Signal) {
        let postmaster = self.server_pid();
        let mut pids = children_of(postmaster);
        pids.push(postmaster);
        for pid in pids {
            let Some(target) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            else {
                continue;
            };
            match rustix::process::kill_process(target, signal) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) => panic!("signal {signal:?} to {pid}: {e}"),
            }
        }
    }

    fn start_server(&self) -> bool {
        self.command("pg_ctl")
            .args(["-D", &self.data().display().to_string()])
            .args(["-l", &self.log_path().display().to_string()])
            .args(["-w", "-t", "60", "start"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A command of the PostgreSQL binaries, run as `nobody` when we are root.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(self.dir.path());
        if rustix::process::geteuid().is_root() && program != "psql" {
            command.uid(NOBODY).gid(NOBODY);
        }
        command
    }

    fn run_checked(&self, command: &mut Command) -> Output {
        let output = command.output().expect("run a PostgreSQL binary");
        assert!(
            output.status.success(),
            "{command:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        output
    }
}

/// The environment variable that runs the servers' test harnesses on PostgreSQL: `postgres`
/// (each harness starts its own cluster) or `embedded` / unset (the embedded store).
pub const TEST_STORE_ENV: &str = "E2EI_TEST_STORE";

/// A PostgreSQL cluster for a test harness when [`TEST_STORE_ENV`] asks for one.
///
/// # Panics
/// On any other value than `postgres`, `embedded` or none, and when the cluster cannot start.
pub fn postgres_if_asked() -> Option<std::sync::Arc<TestPostgres>> {
    match std::env::var(TEST_STORE_ENV).as_deref() {
        Ok("postgres") => Some(std::sync::Arc::new(TestPostgres::start())),
        Ok("embedded" | "") | Err(_) => None,
        Ok(other) => panic!("{TEST_STORE_ENV}={other}: use postgres or embedded"),
    }
}

/// A store on a test cluster that keeps the cluster running as long as the store lives (a
/// test reads the records after the harness that started the cluster is gone).
#[derive(Debug)]
pub struct StoreOnCluster {
    store: std::sync::Arc<dyn Store>,
    _cluster: std::sync::Arc<TestPostgres>,
}

impl StoreOnCluster {
    /// `store`, keeping `cluster` up.
    pub fn new(store: std::sync::Arc<dyn Store>, cluster: std::sync::Arc<TestPostgres>) -> Self {
        Self {
            store,
            _cluster: cluster,
        }
    }
}

impl Store for StoreOnCluster {
    fn get(&self, tree: Tree, key: &str) -> crate::Result<Option<Vec<u8>>> {
        self.store.get(tree, key)
    }
    fn put(&self, tree: Tree, key: &str, value: &[u8]) -> crate::Result<()> {
        self.store.put(tree, key, value)
    }
    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> crate::Result<bool> {
        self.store.compare_and_swap(tree, key, expected, new)
    }
    fn take(&self, tree: Tree, key: &str) -> crate::Result<Option<Vec<u8>>> {
        self.store.take(tree, key)
    }
    fn scan_prefix(&self, tree: Tree, prefix: &str) -> crate::Result<Vec<(String, Vec<u8>)>> {
        self.store.scan_prefix(tree, prefix)
    }
    fn scan_page(
        &self,
        tree: Tree,
        after: Option<&str>,
        limit: usize,
    ) -> crate::Result<Vec<(String, Vec<u8>)>> {
        self.store.scan_page(tree, after, limit)
    }
    fn flush(&self) -> crate::Result<()> {
        self.store.flush()
    }
    fn writes(&self) -> u64 {
        self.store.writes()
    }
    fn shared(&self) -> bool {
        self.store.shared()
    }
    fn written_beside_the_server(&self) -> bool {
        self.store.written_beside_the_server()
    }
    fn for_each_record(&self, each: &mut crate::store::EachRecord<'_>) -> crate::Result<usize> {
        self.store.for_each_record(each)
    }
    fn tree_names(&self) -> crate::Result<Vec<String>> {
        self.store.tree_names()
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data().display().to_string()])
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The superuser's password of every throwaway cluster (they listen on loopback only and
/// live as long as one test).
fn test_password() -> &'static str {
    "e2ei-test-only"
}

/// The processes whose parent is `pid` (a PostgreSQL server's backends), from /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                        .and_then(|p| p.parse::<u32>().ok())
                })
                == Some(pid)
        })
        .collect()
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Where the PostgreSQL binaries are.
fn binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("E2EI_PG_BIN") {
        return PathBuf::from(dir);
    }
    let debian = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            (version >= 15 && entry.path().join("bin/initdb").exists())
                .then(|| (version, entry.path().join("bin")))
        })
        .max();
    if let Some((_, bin)) = newest {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL 15 or newer is not installed (no initdb in E2EI_PG_BIN, \
             /usr/lib/postgresql/N/bin or PATH): `cargo xtask setup` installs Debian's \
             postgresql package"
        )
    })
}

/// What every [`Store`] must do, checked on an empty `store`: single-use redemption,
/// compare-and-swap in each of its four forms, key order and prefixes by bytes, pages, and
/// `replace_json` refusing a record changed since it was read.
///
/// # Panics
/// Where the store breaks the contract.
pub fn store_contract(store: &dyn Store) {
    const NONCES: Tree = Tree::new("nonces");
    const CODES: Tree = Tree::new("codes");
    const DEVICES: Tree = Tree::new("devices");

    store.put(NONCES, "n", b"v").unwrap();
    assert_eq!(store.take(NONCES, "n").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(store.take(NONCES, "n").unwrap(), None, "taken twice");

    let writes = store.writes();
    assert!(
        store.compare_and_swap(CODES, "c", None, None).unwrap(),
        "absent stays absent"
    );
    assert!(
        store
            .compare_and_swap(CODES, "c", None, Some(b"1"))
            .unwrap()
    );
    assert!(
        !store
            .compare_and_swap(CODES, "c", None, Some(b"2"))
            .unwrap(),
        "inserted twice"
    );
    assert!(!store.compare_and_swap(CODES, "c", None, None).unwrap());
    assert!(
        !store
            .compare_and_swap(CODES, "c", Some(b"0"), Some(b"2"))
            .unwrap()
    );
    assert!(
        store
            .compare_and_swap(CODES, "c", Some(b"1"), Some(b"2"))
            .unwrap()
    );
    assert!(
        !store
            .compare_and_swap(CODES, "c", Some(b"1"), None)
            .unwrap()
    );
    assert!(
        store
            .compare_and_swap(CODES, "c", Some(b"2"), None)
            .unwrap()
    );
    assert_eq!(store.get(CODES, "c").unwrap(), None);
    // Every successful swap counts as a write; a store may count the failed ones too (the
    // embedded store counts each write it makes before knowing its outcome: one flush more).
    let counted = store.writes() - writes;
    assert!((4..=9).contains(&counted), "{counted} writes counted");

    // Bytes, not characters or a collation, order keys; a prefix is a byte prefix.
    let binary: Vec<u8> = (0..=255).collect();
    for key in ["u1/a", "u10/x", "u2/b", "u3/c", "u1/\u{e9}", "U1/z"] {
        store.put(DEVICES, key, &binary).unwrap();
    }
    let u1: Vec<String> = store
        .scan_prefix(DEVICES, "u1/")
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            assert_eq!(v, binary);
            k
        })
        .collect();
    assert_eq!(u1, ["u1/a", "u1/\u{e9}"]);
    assert_eq!(store.scan_prefix(DEVICES, "").unwrap().len(), 6);
    assert!(
        store.scan_prefix(NONCES, "").unwrap().is_empty(),
        "trees are apart"
    );
    let first = store.scan_page(DEVICES, None, 2).unwrap();
    let keys: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["U1/z", "u1/a"]);
    let rest = store.scan_page(DEVICES, Some("u1/a"), 10).unwrap();
    let keys: Vec<&str> = rest.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["u1/\u{e9}", "u10/x", "u2/b", "u3/c"]);

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
    store.flush().unwrap();

    // A walk through the whole store: every record, tree by tree in key order.
    let mut walked = Vec::new();
    let trees = store
        .for_each_record(&mut |tree, key, value| {
            walked.push((tree.to_owned(), key, value));
            Ok(())
        })
        .unwrap();
    let mut expected = Vec::new();
    for tree in store.tree_names().unwrap() {
        for (key, value) in store.scan_prefix(Tree::named(tree.clone()), "").unwrap() {
            expected.push((tree.clone(), key, value));
        }
    }
    assert_eq!(trees, 2, "codes and devices");
    assert_eq!(walked, expected);
}

/// What a store whose walk reads one snapshot (SQLite, PostgreSQL) must do, checked on an empty
/// `store`: records added, changed and removed while [`Store::for_each_record`] goes on (after
/// it has started, by other calls on the same store) are not seen by it, over more records than
/// it reads at a time.
///
/// # Panics
/// Where the walk sees a write made after it started.
pub fn walk_reads_one_snapshot(store: &dyn Store) {
    const FIRST: Tree = Tree::new("first");
    const SECOND: Tree = Tree::new("second");
    let many = crate::store::RECORDS_PER_READ * 2 + 500;
    for i in 0..many {
        store.put(FIRST, &format!("{i:06}"), b"before").unwrap();
    }
    store.put(SECOND, "kept", b"before").unwrap();
    store.put(SECOND, "removed", b"before").unwrap();
    let mut walked: Vec<(String, String, Vec<u8>)> = Vec::new();
    let trees = store
        .for_each_record(&mut |tree, key, value| {
            if walked.is_empty() {
                store.put(FIRST, "999999", b"added")?;
                store.put(FIRST, &format!("{:06}", many - 1), b"changed")?;
                store.take(SECOND, "removed")?;
                store.put(Tree::new("third"), "new", b"added")?;
            }
            walked.push((tree.to_owned(), key, value));
            Ok(())
        })
        .unwrap();
    assert_eq!(trees, 2, "a tree made during the walk is not walked");
    assert_eq!(walked.len(), many + 2, "records added or removed meanwhile");
    assert!(walked.iter().all(|(_, _, value)| value == b"before"));
    assert_eq!(
        walked
            .last()
            .map(|(tree, key, _)| (tree.as_str(), key.as_str())),
        Some(("second", "removed"))
    );
    // The writes themselves were made.
    assert_eq!(store.get(SECOND, "removed").unwrap(), None);
    assert_eq!(
        store.get(FIRST, "999999").unwrap().as_deref(),
        Some(&b"added"[..])
    );
}
