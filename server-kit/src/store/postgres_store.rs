//! The shared store: one PostgreSQL table of records (`{schema}.records`, a row per tree and
//! key), which several replicas of a server use at once.
//!
//! - **Atomicity.** Compare-and-swap is a conditional `INSERT … ON CONFLICT DO NOTHING`,
//!   `UPDATE … WHERE value = expected` or `DELETE … WHERE value = expected`; `take` is a
//!   `DELETE … RETURNING`. Each is one statement, so a single-use value is redeemed once
//!   however many replicas race for it.
//! - **Durability.** Every statement commits on its own with `synchronous_commit = on`, so a
//!   write is durable when it returns and [`Store::flush`] has nothing left to do.
//! - **Connections.** `pool_size` threads each hold one connection (opened when first needed,
//!   opened again after it broke). A call waits for its answer at most `connect_timeout +
//!   statement_timeout`; a database that cannot be reached answers
//!   [`Error::Unavailable`](crate::Error::Unavailable), and for a moment after a failed
//!   connection calls fail at once instead of queueing behind it.
//! - **Schema.** [`super::postgres_schema`] brings the schema up to date at open, and refuses a
//!   schema newer than this build.
//! - **TLS.** With `[store] ca_file`, over rustls ([`super::postgres_tls`]), the certificate
//!   checked against those roots and the host.
//!
//! The `postgres` client runs its own small runtime per connection, which may not be driven
//! from a task of the server's runtime; the connection threads keep the two apart, and a caller
//! on the server's runtime waits through `block_in_place` so the other tasks keep running.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, Statement};

use super::postgres_schema;
use super::postgres_tls::RustlsMakeConnect;
use super::{Store, Tree};
use crate::{Error, Result};

/// Calls waiting for a connection, at most; more are refused at once as unavailable.
const QUEUE: usize = 4096;

/// How long calls fail at once after a connection could not be opened.
const FAIL_FAST_FOR: Duration = Duration::from_millis(500);

/// A connection unused this long is checked with a round trip before its next call.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);

/// Where and how to connect (built by [`super::StoreConfig`]).
#[derive(Clone)]
pub(crate) struct PostgresSettings {
    pub(super) config: postgres::Config,
    /// TLS with these roots (`[store] ca_file`), or none.
    pub(super) tls: Option<RustlsMakeConnect>,
    pub(super) schema: String,
    pub(super) pool_size: usize,
    pub(super) connect_timeout: Duration,
    pub(super) statement_timeout: Duration,
}

impl PostgresSettings {
    fn connect(&self) -> Result<Connection> {
        let mut config = self.config.clone();
        let statement_ms = self.statement_timeout.as_millis();
        config
            .connect_timeout(self.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            // A database host that stops answering breaks the connection instead of holding
            // a thread forever.
            .tcp_user_timeout(self.connect_timeout + self.statement_timeout)
            .options(&format!(
                "-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} \
                 -c idle_in_transaction_session_timeout={statement_ms} -c synchronous_commit=on"
            ));
        let mut client = self.open(&config).map_err(unreachable)?;
        let statements = Statements::prepare(&mut client, &self.schema).map_err(classify)?;
        Ok(Connection { client, statements })
    }
}

/// One open connection and its prepared statements.
struct Connection {
    client: Client,
    statements: Statements,
}

struct Statements {
    get: Statement,
    put: Statement,
    insert_new: Statement,
    update_if: Statement,
    delete_if: Statement,
    take: Statement,
    range: Statement,
    from: Statement,
    page_first: Statement,
    page_after: Statement,
    trees: Statement,
}

impl Statements {
    fn prepare(client: &mut Client, schema: &str) -> std::result::Result<Self, postgres::Error> {
        let table = format!("{schema}.records");
        let mut prepare = |sql: String| client.prepare(&sql);
        Ok(Self {
            get: prepare(format!(
                "SELECT value FROM {table} WHERE tree = $1 AND key = $2"
            ))?,
            put: prepare(format!(
                "INSERT INTO {table} (tree, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value"
            ))?,
            insert_new: prepare(format!(
                "INSERT INTO {table} (tree, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (tree, key) DO NOTHING"
            ))?,
            update_if: prepare(format!(
                "UPDATE {table} SET value = $4 WHERE tree = $1 AND key = $2 AND value = $3"
            ))?,
            delete_if: prepare(format!(
                "DELETE FROM {table} WHERE tree = $1 AND key = $2 AND value = $3"
            ))?,
            take: prepare(format!(
                "DELETE FROM {table} WHERE tree = $1 AND key = $2 RETURNING value"
            ))?,
            range: prepare(format!(
                "SELECT key, value FROM {table} WHERE tree = $1 AND key >= $2 AND key < $3 \
                 ORDER BY key"
            ))?,
            from: prepare(format!(
                "SELECT key, value FROM {table} WHERE tree = $1 AND key >= $2 ORDER BY key"
            ))?,
            page_first: prepare(format!(
                "SELECT key, value FROM {table} WHERE tree = $1 ORDER BY key LIMIT $2"
            ))?,
            page_after: prepare(format!(
                "SELECT key, value FROM {table} WHERE tree = $1 AND key > $2 ORDER BY key \
                 LIMIT $3"
            ))?,
            trees: prepare(format!("SELECT DISTINCT tree FROM {table} ORDER BY tree"))?,
        })
    }
}

/// What a connection thread runs: the call, given the thread's connection or why there is
/// none, unless its caller has stopped waiting (`deadline`): a call answered 503 is never
/// applied later.
struct Job {
    deadline: Instant,
    run: Call,
}

/// A call, given the connection or why there is none.
type Call = Box<dyn FnOnce(Result<&mut Connection>) + Send>;

/// The PostgreSQL store.
pub struct PostgresStore {
    jobs: SyncSender<Job>,
    writes: AtomicU64,
    answer_within: Duration,
    health: Arc<Health>,
    schema: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, brings the schema up to date (refusing one newer than this build), and
    /// starts the connection threads.
    pub(crate) fn open(settings: PostgresSettings) -> Result<Self> {
        // Not on the caller's thread: it may be a task of a runtime, where the client's own
        // runtime may not run.
        let first = {
            let settings = settings.clone();
            std::thread::spawn(move || -> Result<Connection> {
                let mut connection = settings.connect_for_migration()?;
                postgres_schema::migrate(&mut connection, &settings.schema)?;
                settings.connect()
            })
            .join()
            .map_err(|_| Error::Storage("opening the database panicked".into()))??
        };
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let health = Arc::new(Health::default());
        let mut first = Some(first);
        for n in 0..settings.pool_size {
            let (queue, settings, health) = (queue.clone(), settings.clone(), health.clone());
            let connection = first.take();
            std::thread::Builder::new()
                .name(format!("store-pg-{n}"))
                .spawn(move || serve_jobs(&queue, &settings, &health, connection))
                .map_err(|e| Error::Storage(format!("starting a connection thread: {e}")))?;
        }
        Ok(Self {
            jobs,
            writes: AtomicU64::new(0),
            answer_within: settings.connect_timeout + settings.statement_timeout,
            health,
            schema: settings.schema,
        })
    }

    /// Runs `call` on a connection and waits for its answer.
    fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Connection) -> std::result::Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T> {
        if let Some(why) = self.health.still_failing() {
            return Err(Error::Unavailable(why));
        }
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let job = Job {
            deadline: Instant::now() + self.answer_within,
            run: Box::new(move |connection| {
                let outcome = connection.and_then(|c| call(c).map_err(classify));
                // The caller may have stopped waiting just now; the outcome is then dropped.
                let _ = answer.send(outcome);
            }),
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(Error::Unavailable(
                    "every database connection is busy and the line is full".into(),
                ));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(Error::Storage("the connection threads are gone".into()));
            }
        }
        match wait(&answered, self.answer_within) {
            Ok(outcome) => outcome,
            Err(RecvTimeoutError::Timeout) => Err(Error::Unavailable(format!(
                "the database did not answer within {} ms",
                self.answer_within.as_millis()
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                Err(Error::Storage("a connection thread stopped".into()))
            }
        }
    }

    fn wrote(&self, applied: bool) -> bool {
        if applied {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        applied
    }
}

impl PostgresSettings {
    /// A connection for the migration, which may take longer than a statement (an index over
    /// a large table): no statement timeout.
    fn connect_for_migration(&self) -> Result<Client> {
        let mut config = self.config.clone();
        config
            .connect_timeout(self.connect_timeout)
            .options("-c synchronous_commit=on");
        self.open(&config).map_err(unreachable)
    }

    /// A connection over TLS when configured, in the clear otherwise.
    fn open(&self, config: &postgres::Config) -> std::result::Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(NoTls),
        }
    }
}

/// A connection thread: takes calls from the line one at a time and runs each on its
/// connection, opening it first when there is none, it broke, or it may have broken unseen:
/// after any thread saw a connection break (an outage breaks them all, and a connection learns
/// it only when next used), and after an idle second (checked with a round trip).
fn serve_jobs(
    queue: &Mutex<Receiver<Job>>,
    settings: &PostgresSettings,
    health: &Health,
    mut connection: Option<Connection>,
) {
    let mut opened_in = health.generation.load(Ordering::SeqCst);
    let mut last_used = Instant::now();
    loop {
        let job = {
            let queue = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match queue.recv() {
                Ok(job) => job,
                // The store was dropped.
                Err(_) => return,
            }
        };
        let late = || {
            Err(Error::Unavailable(
                "the call waited past its deadline for a connection; not run".into(),
            ))
        };
        if Instant::now() >= job.deadline {
            (job.run)(late());
            continue;
        }
        let stale = match connection.as_mut() {
            Some(open) => {
                open.client.is_closed()
                    || opened_in != health.generation.load(Ordering::SeqCst)
                    || (last_used.elapsed() > IDLE_CHECK_AFTER
                        && open.client.is_valid(settings.connect_timeout).is_err())
            }
            None => true,
        };
        if stale {
            connection = None;
            opened_in = health.generation.load(Ordering::SeqCst);
            // Calls queued behind a failed connection fail at once too.
            if let Some(why) = health.still_failing() {
                (job.run)(Err(Error::Unavailable(why)));
                continue;
            }
            match settings.connect() {
                Ok(opened) => {
                    health.recovered();
                    connection = Some(opened);
                }
                Err(e) => {
                    health.failed(&e);
                    (job.run)(Err(e));
                    continue;
                }
            }
            if Instant::now() >= job.deadline {
                (job.run)(late());
                continue;
            }
        }
        if let Some(open) = connection.as_mut() {
            (job.run)(Ok(open));
            last_used = Instant::now();
            if open.client.is_closed() {
                connection = None;
                health.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// What the connection threads share about the database's state.
#[derive(Default)]
struct Health {
    /// Bumped when a connection is seen broken: the others are suspect then.
    generation: AtomicU64,
    /// Until when calls fail at once, and why (the last failed connection).
    failing: Mutex<Option<(Instant, String)>>,
}

impl Health {
    fn failed(&self, e: &Error) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.lock() = Some((Instant::now() + FAIL_FAST_FOR, e.to_string()));
    }

    fn recovered(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, String)>> {
        self.failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why calls fail at once now, if they do.
    fn still_failing(&self) -> Option<String> {
        match &*self.lock() {
            Some((until, why)) if Instant::now() < *until => Some(why.clone()),
            _ => None,
        }
    }
}

/// Waits for an answer; on a worker of a multi-threaded runtime, through `block_in_place`,
/// so the worker's other tasks move elsewhere meanwhile.
fn wait<T>(answered: &Receiver<T>, within: Duration) -> std::result::Result<T, RecvTimeoutError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let blocking = || answered.recv_timeout(within);
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(blocking)
        }
        _ => blocking(),
    }
}

/// A connection that could not be opened: refused for a reason a retry does not change (a
/// wrong password, a missing database: [`Error::Config`]), or for now
/// ([`Error::Unavailable`]).
fn unreachable(e: postgres::Error) -> Error {
    match classify(e) {
        Error::Storage(why) => Error::Config(format!("the database refused the connection: {why}")),
        other => other,
    }
}

/// A failed statement: the database or the way to it is (for now) unable to answer
/// ([`Error::Unavailable`]), or the statement itself failed ([`Error::Storage`]).
pub(super) fn classify(e: postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let what = format!("{} {code}: {}", db.severity(), db.message());
            // 08: connection exception; 53: insufficient resources; 57: operator
            // intervention (shutdown, statement timeout); 40: transaction rollback
            // (serialization, deadlock); 55P03: lock not available.
            let transient = ["08", "53", "57", "40"]
                .iter()
                .any(|class| code.starts_with(class))
                || code == "55P03";
            if transient {
                Error::Unavailable(format!("the database is unable to answer: {what}"))
            } else {
                Error::Storage(format!("database: {what}"))
            }
        }
        None => {
            let mut what = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                what = format!("{what}: {cause}");
                source = cause.source();
            }
            Error::Unavailable(format!("the database cannot be reached: {what}"))
        }
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < u8::MAX {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

fn entries(rows: Vec<postgres::Row>) -> Vec<(String, Vec<u8>)> {
    rows.into_iter()
        .map(|row| {
            let key: Vec<u8> = row.get(0);
            (String::from_utf8_lossy(&key).into_owned(), row.get(1))
        })
        .collect()
}

impl Store for PostgresStore {
    fn get(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.as_bytes().to_vec();
        self.run(move |c| {
            let row = c
                .client
                .query_opt(&c.statements.get, &[&tree.name(), &key])?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn put(&self, tree: Tree, key: &str, value: &[u8]) -> Result<()> {
        let (key, value) = (key.as_bytes().to_vec(), value.to_vec());
        self.run(move |c| {
            c.client
                .execute(&c.statements.put, &[&tree.name(), &key, &value])
        })?;
        self.wrote(true);
        Ok(())
    }

    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        let key = key.as_bytes().to_vec();
        let (expected, new) = (expected.map(<[u8]>::to_vec), new.map(<[u8]>::to_vec));
        let swapped = self.run(move |c| {
            let s = &c.statements;
            let name = tree.name();
            Ok(match (expected, new) {
                (None, Some(new)) => c.client.execute(&s.insert_new, &[&name, &key, &new])? == 1,
                (Some(old), Some(new)) => {
                    c.client.execute(&s.update_if, &[&name, &key, &old, &new])? == 1
                }
                (Some(old), None) => c.client.execute(&s.delete_if, &[&name, &key, &old])? == 1,
                // "Absent, and leave it absent": true when there is nothing.
                (None, None) => c.client.query_opt(&s.get, &[&name, &key])?.is_none(),
            })
        })?;
        Ok(self.wrote(swapped))
    }

    fn take(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.as_bytes().to_vec();
        let taken: Option<Vec<u8>> = self.run(move |c| {
            let row = c
                .client
                .query_opt(&c.statements.take, &[&tree.name(), &key])?;
            Ok(row.map(|row| row.get(0)))
        })?;
        self.wrote(taken.is_some());
        Ok(taken)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let prefix = prefix.as_bytes().to_vec();
        self.run(move |c| {
            let name = tree.name();
            let rows = match after_prefix(&prefix) {
                Some(end) => c
                    .client
                    .query(&c.statements.range, &[&name, &prefix, &end])?,
                None => c.client.query(&c.statements.from, &[&name, &prefix])?,
            };
            Ok(entries(rows))
        })
    }

    fn scan_page(
        &self,
        tree: Tree,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let after = after.map(|key| key.as_bytes().to_vec());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            let name = tree.name();
            let rows = match after {
                Some(key) => c
                    .client
                    .query(&c.statements.page_after, &[&name, &key, &limit])?,
                None => c.client.query(&c.statements.page_first, &[&name, &limit])?,
            };
            Ok(entries(rows))
        })
    }

    /// Every write committed durably when it returned.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn shared(&self) -> bool {
        true
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        self.run(|c| {
            let rows = c.client.query(&c.statements.trees, &[])?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::after_prefix;

    #[test]
    fn the_bound_after_a_prefix_covers_exactly_the_keys_starting_with_it() {
        assert_eq!(after_prefix(b"u1/").as_deref(), Some(&b"u10"[..]));
        assert_eq!(after_prefix(b"a\xff\xff").as_deref(), Some(&b"b"[..]));
        assert_eq!(after_prefix(b"\xff"), None);
        assert_eq!(after_prefix(b""), None);
    }
}
