//! The shared store: one PostgreSQL table of records (`{schema}.records`, a row per tree and
//! key), which several replicas of a server use at once.
//!
//! - **Atomicity.** Compare-and-swap is a conditional `INSERT … ON CONFLICT DO NOTHING`,
//!   `UPDATE … WHERE value = expected` or `DELETE … WHERE value = expected`; `take` is a
//!   `DELETE … RETURNING`. Each is one statement, so a single-use value is redeemed once
//!   however many replicas race for it.
//! - **Durability.** Every statement commits on its own with `synchronous_commit = on`, so a
//!   write is durable when it returns and [`Store::flush`] has nothing left to do.
//! - **Connections.** A pool of `pool_size` connections, each opened when first needed and
//!   opened again after it broke. A call runs on its caller's thread: it borrows a free
//!   connection and sends its statement itself, with no hand-over to another thread. A call
//!   sends its statement within `connect_timeout` of its start or never (waiting for a free
//!   connection and opening one must fit in that), and is answered within `connect_timeout +
//!   statement_timeout`: a statement sent has its whole `statement_timeout`, within which the
//!   database ends it, before its caller is answered. A database that cannot be reached or does
//!   not answer in time gives [`Error::Unavailable`](crate::Error::Unavailable), and for a
//!   moment after a failed connection calls fail at once instead of queueing behind it. A call
//!   answered so before its statement was sent is never applied; one whose statement was sent
//!   and got no answer may have been, as with any database client.
//! - **Schema.** [`super::postgres_schema`] brings the schema up to date at open, and refuses a
//!   schema newer than this build.
//! - **TLS.** With `[store] ca_file`, over rustls ([`super::postgres_tls`]), the certificate
//!   checked against those roots and the host.
//!
//! Each connection is driven by a single-threaded runtime of its own, run by whichever thread
//! borrowed it, which may not happen inside a task of the server's runtime: a caller on a worker
//! of the server's (multi-threaded) runtime runs through `block_in_place`, which moves the
//! worker's other tasks elsewhere meanwhile; a caller on a single-threaded runtime (a test) on
//! a thread of its own ([`off_the_runtime`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls, Statement};

use super::postgres_liveness::Liveness;
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
    pub(super) config: tokio_postgres::Config,
    /// TLS with these roots (`[store] ca_file`), or none.
    pub(super) tls: Option<RustlsMakeConnect>,
    pub(super) schema: String,
    pub(super) pool_size: usize,
    pub(super) connect_timeout: Duration,
    pub(super) statement_timeout: Duration,
}

impl PostgresSettings {
    /// How long a call takes at most, from its start to its answer.
    fn answer_within(&self) -> Duration {
        self.connect_timeout + self.statement_timeout
    }

    /// The options every serving connection runs with: a statement, a lock wait and an idle
    /// transaction bounded by `statement_timeout`, a host that vanished given up
    /// ([`Liveness::serving`]).
    fn serving_config(&self) -> tokio_postgres::Config {
        let statement_ms = self.statement_timeout.as_millis();
        self.config_with(
            Liveness::serving(self.answer_within()),
            &format!(
                "-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} \
                 -c idle_in_transaction_session_timeout={statement_ms}"
            ),
        )
    }

    /// The options of the connection that migrates the schema, which may take longer than a
    /// statement (an index over a large table): no statement or lock timeout (a replica
    /// waits for another's migration), but a transaction left idle ends after a call's time,
    /// and a vanished host on either side ends the connection ([`Liveness::migrating`]), so a
    /// migration is never left holding its lock.
    fn migration_config(&self) -> tokio_postgres::Config {
        let idle_ms = self.answer_within().as_millis();
        self.config_with(
            Liveness::migrating(self.answer_within()),
            &format!("-c idle_in_transaction_session_timeout={idle_ms}"),
        )
    }

    /// The configured connection (`store.url`) with `liveness`, the handshake bounded by
    /// `connect_timeout`, and these settings after the URL's own `options`, if any, so that
    /// they are kept and ours prevail; every write durable when it returns
    /// (`synchronous_commit`), whatever the database's default.
    fn config_with(&self, liveness: Liveness, settings: &str) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        liveness.apply(&mut config);
        let ours = format!(
            "{settings} -c synchronous_commit=on {}",
            liveness.server_options()
        );
        let options = match self.config.get_options() {
            Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} {ours}"),
            _ => ours,
        };
        config
            .connect_timeout(self.connect_timeout)
            .options(options);
        config
    }

    /// Opens a connection on `runtime`, over TLS when configured, and spawns there the task
    /// that drives it; the connection's handshake is bounded by `deadline`.
    fn open_on(
        &self,
        runtime: &Runtime,
        config: &tokio_postgres::Config,
        deadline: Instant,
    ) -> std::result::Result<(Client, Driver), Opening> {
        let connected = runtime.block_on(until(deadline, async {
            match &self.tls {
                Some(tls) => config
                    .connect(tls.clone())
                    .await
                    .map(|(client, driver)| (client, Driver(runtime.spawn(driver)))),
                None => config
                    .connect(NoTls)
                    .await
                    .map(|(client, driver)| (client, Driver(runtime.spawn(driver)))),
            }
        }));
        match connected {
            Some(Ok(opened)) => Ok(opened),
            Some(Err(e)) => Err(Opening::Failed(unreachable(e))),
            None => Err(Opening::TimedOut),
        }
    }

    /// A serving connection with its statements prepared, by `deadline`.
    fn connect(
        &self,
        runtime: &Runtime,
        deadline: Instant,
    ) -> std::result::Result<Connection, Opening> {
        let (client, driver) = self.open_on(runtime, &self.serving_config(), deadline)?;
        let statements = runtime
            .block_on(until(deadline, Statements::prepare(&client, &self.schema)))
            .ok_or(Opening::TimedOut)?
            .map_err(|e| Opening::Failed(classify(e)))?;
        Ok(Connection {
            client,
            statements,
            _driver: driver,
        })
    }
}

/// Why a connection could not be opened.
enum Opening {
    /// The deadline came first: evidence of an outage only when the attempt had time enough.
    TimedOut,
    /// The database or the way to it refused.
    Failed(Error),
}

impl From<Opening> for Error {
    fn from(opening: Opening) -> Self {
        match opening {
            Opening::TimedOut => {
                Error::Unavailable("the database did not complete the connection in time".into())
            }
            Opening::Failed(e) => e,
        }
    }
}

/// The task that drives a connection on its runtime, stopped when the connection is dropped:
/// a statement queued on a connection given up (its answer late) is then never written later,
/// when the runtime next runs.
struct Driver(tokio::task::JoinHandle<std::result::Result<(), tokio_postgres::Error>>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// When a call must have sent its statement, and when its caller is answered at the latest.
#[derive(Clone, Copy)]
struct Deadlines {
    send_by: Instant,
    answer_by: Instant,
}

impl Deadlines {
    fn from_now(settings: &PostgresSettings) -> Self {
        let now = Instant::now();
        Self {
            send_by: now + settings.connect_timeout,
            answer_by: now + settings.answer_within(),
        }
    }
}

/// Runs `work` until `deadline`: its output, or none when the deadline came first (`work` is
/// then dropped).
async fn until<T>(deadline: Instant, work: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout_at(deadline.into(), work).await.ok()
}

/// Runs a round trip until `deadline`: its answer, or why there is none.
async fn bounded<T>(
    deadline: Instant,
    round_trip: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> Result<T> {
    match until(deadline, round_trip).await {
        Some(answer) => answer.map_err(classify),
        None => Err(Error::Unavailable(
            "the database did not answer before the call's deadline".into(),
        )),
    }
}

/// Lets the task driving a connection take in what its socket holds: the connection's task runs
/// only while its runtime does, so a connection the database ended while it sat unused (a
/// backend terminated, a database restarted) is seen closed only after this, and is then
/// opened again instead of failing its next call. Two turns: one to hear the socket, one for
/// the task to read it.
fn settle(runtime: &Runtime) {
    runtime.block_on(async {
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    });
}

/// A single-threaded runtime for one connection.
fn connection_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Storage(format!("starting a connection's runtime: {e}")))
}

/// One open connection, its prepared statements and the task driving it.
struct Connection {
    client: Client,
    statements: Statements,
    _driver: Driver,
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
    async fn prepare(
        client: &Client,
        schema: &str,
    ) -> std::result::Result<Self, tokio_postgres::Error> {
        let table = format!("{schema}.records");
        let prepare = |sql: String| async move { client.prepare(&sql).await };
        // Polled together, the eleven are sent as one pipeline: one round trip, not eleven.
        let (
            get,
            put,
            insert_new,
            update_if,
            delete_if,
            take,
            range,
            from,
            page_first,
            page_after,
            trees,
        ) = tokio::try_join!(
            prepare(format!(
                "SELECT value FROM {table} WHERE tree = $1 AND key = $2"
            )),
            prepare(format!(
                "INSERT INTO {table} (tree, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value"
            )),
            prepare(format!(
                "INSERT INTO {table} (tree, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (tree, key) DO NOTHING"
            )),
            prepare(format!(
                "UPDATE {table} SET value = $4 WHERE tree = $1 AND key = $2 AND value = $3"
            )),
            prepare(format!(
                "DELETE FROM {table} WHERE tree = $1 AND key = $2 AND value = $3"
            )),
            prepare(format!(
                "DELETE FROM {table} WHERE tree = $1 AND key = $2 RETURNING value"
            )),
            prepare(format!(
                "SELECT key, value FROM {table} WHERE tree = $1 AND key >= $2 AND key < $3 \
                 ORDER BY key"
            )),
            prepare(format!(
                "SELECT key, value FROM {table} WHERE tree = $1 AND key >= $2 ORDER BY key"
            )),
            prepare(format!(
                "SELECT key, value FROM {table} WHERE tree = $1 ORDER BY key LIMIT $2"
            )),
            prepare(format!(
                "SELECT key, value FROM {table} WHERE tree = $1 AND key > $2 ORDER BY key \
                 LIMIT $3"
            )),
            prepare(format!("SELECT DISTINCT tree FROM {table} ORDER BY tree")),
        )?;
        Ok(Self {
            get,
            put,
            insert_new,
            update_if,
            delete_if,
            take,
            range,
            from,
            page_first,
            page_after,
            trees,
        })
    }
}

/// A place in the pool: the runtime that drives its connection, the connection when open, and
/// what decides whether it must be checked or opened again before its next call.
struct Slot {
    runtime: Runtime,
    connection: Option<Connection>,
    /// The [`Health::generation`] the connection was opened in.
    opened_in: u64,
    last_used: Instant,
}

impl Slot {
    /// A place with no connection yet.
    fn new() -> Result<Self> {
        Ok(Self {
            runtime: connection_runtime()?,
            connection: None,
            opened_in: 0,
            last_used: Instant::now(),
        })
    }

    /// Closes the connection and drops its task with the runtime, without waiting: the store
    /// may be dropped inside a task of another runtime, where waiting is not allowed.
    fn close(self) {
        drop(self.connection);
        self.runtime.shutdown_background();
    }
}

/// The free places of the pool, and the calls waiting for one.
struct Pool {
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    free: Vec<Slot>,
    waiting: usize,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` on a free place, waiting for one until `deadline`, and gives the place back
    /// (without its connection when `work` panicked: the connection's state is unknown then).
    fn with_slot<T>(
        &self,
        deadline: Instant,
        work: impl FnOnce(&mut Slot) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.borrow(deadline)?;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut slot)));
        if outcome.is_err() {
            slot.connection = None;
        }
        self.lock().free.push(slot);
        self.returned.notify_one();
        outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Takes a free place, waiting for one until `deadline`; the most recently used first, so
    /// that under light load the same few connections stay warm.
    fn borrow(&self, deadline: Instant) -> Result<Slot> {
        let mut state = self.lock();
        if state.free.is_empty() && state.waiting >= QUEUE {
            return Err(Error::Unavailable(
                "every database connection is busy and the line is full".into(),
            ));
        }
        state.waiting += 1;
        let slot = loop {
            if let Some(slot) = state.free.pop() {
                break Ok(slot);
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(Error::Unavailable(
                    "the call waited past its deadline for a connection; not run".into(),
                ));
            }
            state = self
                .returned
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        state.waiting -= 1;
        slot
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    settings: PostgresSettings,
    writes: AtomicU64,
    health: Health,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.settings.schema)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for slot in self.pool.lock().free.drain(..) {
            slot.close();
        }
    }
}

impl PostgresStore {
    /// Connects, brings the schema up to date (refusing one newer than this build), and
    /// opens the first connection of the pool.
    pub(crate) fn open(settings: PostgresSettings) -> Result<Self> {
        // Off the caller's runtime, where the connections' own may not run; the places of the
        // pool are made there too, so that one dropped on an error is dropped there.
        let free = off_the_runtime(|| -> Result<Vec<Slot>> {
            let first = Slot::new()?;
            let deadline = Instant::now() + settings.connect_timeout;
            let (mut migrating, _driver) =
                settings.open_on(&first.runtime, &settings.migration_config(), deadline)?;
            first
                .runtime
                .block_on(postgres_schema::migrate(&mut migrating, &settings.schema))?;
            drop(migrating);
            let deadline = Instant::now() + settings.answer_within();
            let connection = settings.connect(&first.runtime, deadline)?;
            let mut free = Vec::with_capacity(settings.pool_size);
            for _ in 1..settings.pool_size {
                free.push(Slot::new()?);
            }
            // Last, so that it is borrowed first.
            free.push(Slot {
                connection: Some(connection),
                ..first
            });
            Ok(free)
        })?;
        Ok(Self {
            pool: Pool {
                state: Mutex::new(PoolState { free, waiting: 0 }),
                returned: Condvar::new(),
            },
            settings,
            writes: AtomicU64::new(0),
            health: Health::default(),
        })
    }

    /// Runs `call` on a connection of the pool, on this thread, and gives its answer (see the
    /// module's description for its deadlines).
    fn run<T: Send>(
        &self,
        call: impl AsyncFnOnce(&Connection) -> std::result::Result<T, tokio_postgres::Error> + Send,
    ) -> Result<T> {
        if let Some(why) = self.health.still_failing() {
            return Err(Error::Unavailable(why));
        }
        let deadlines = Deadlines::from_now(&self.settings);
        off_the_runtime(|| {
            self.pool.with_slot(deadlines.send_by, |slot| {
                self.call_on(slot, deadlines, call)
            })
        })
    }

    /// Runs `call` on `slot`'s connection, made ready first.
    fn call_on<T>(
        &self,
        slot: &mut Slot,
        deadlines: Deadlines,
        call: impl AsyncFnOnce(&Connection) -> std::result::Result<T, tokio_postgres::Error>,
    ) -> Result<T> {
        self.make_ready(slot, deadlines.send_by)?;
        let Some(connection) = slot.connection.as_ref() else {
            return Err(Error::Storage("a connection made ready is missing".into()));
        };
        if Instant::now() >= deadlines.send_by {
            return Err(late());
        }
        let answer = slot
            .runtime
            .block_on(until(deadlines.answer_by, call(connection)));
        slot.last_used = Instant::now();
        // A refusal by the database leaves the connection in step with it; no answer, or a
        // failure of the connection itself, leaves its state unknown.
        let in_step = match &answer {
            Some(Ok(_)) => true,
            Some(Err(e)) => e.as_db_error().is_some(),
            None => false,
        };
        let closed = slot
            .connection
            .as_ref()
            .is_none_or(|c| c.client.is_closed());
        if closed || !in_step {
            slot.connection = None;
        }
        if closed {
            // The others may be broken too: an outage breaks them all, and a connection
            // learns it only when next used.
            self.health.generation.fetch_add(1, Ordering::SeqCst);
        }
        match answer {
            Some(outcome) => outcome.map_err(classify),
            None => Err(Error::Unavailable(format!(
                "the database did not answer within {} ms",
                self.settings.answer_within().as_millis()
            ))),
        }
    }

    /// Gives `slot` an open connection by `send_by`: the one it has, unless it broke or may
    /// have broken unseen (after any call saw a connection break, and after an idle second,
    /// checked with a round trip); otherwise a new one, unless connections are failing just
    /// now. A new connection that does not open in time counts as a failure of the database
    /// only when it had at least half of `connect_timeout`: a call late from waiting in line
    /// does not make the others fail fast.
    fn make_ready(&self, slot: &mut Slot, send_by: Instant) -> Result<()> {
        let generation = self.health.generation.load(Ordering::SeqCst);
        if slot.connection.is_some() {
            settle(&slot.runtime);
        }
        let fresh = match slot.connection.as_ref() {
            Some(open) => {
                !open.client.is_closed()
                    && slot.opened_in == generation
                    && (slot.last_used.elapsed() <= IDLE_CHECK_AFTER || {
                        let answered = slot
                            .runtime
                            .block_on(until(send_by, open.client.simple_query("")));
                        matches!(answered, Some(Ok(_)))
                    })
            }
            None => false,
        };
        if fresh {
            return Ok(());
        }
        slot.connection = None;
        slot.opened_in = generation;
        if let Some(why) = self.health.still_failing() {
            return Err(Error::Unavailable(why));
        }
        let budget = send_by.saturating_duration_since(Instant::now());
        match self.settings.connect(&slot.runtime, send_by) {
            Ok(opened) => {
                self.health.recovered();
                slot.connection = Some(opened);
                Ok(())
            }
            Err(Opening::TimedOut) if budget < self.settings.connect_timeout / 2 => Err(late()),
            Err(failure) => {
                let e = Error::from(failure);
                self.health.failed(&e);
                Err(e)
            }
        }
    }

    /// [`Store::for_each_record`] on `slot`'s connection.
    fn walk(&self, slot: &Slot, each: &mut super::EachRecord<'_>) -> Result<usize> {
        let Some(connection) = slot.connection.as_ref() else {
            return Err(Error::Storage("a connection made ready is missing".into()));
        };
        let client = &connection.client;
        let within = self.settings.answer_within();
        let table = format!("{}.records", self.settings.schema);
        slot.runtime.block_on(async {
            bounded(
                Instant::now() + within,
                client.batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
                     SET LOCAL idle_in_transaction_session_timeout = 0;
                     DECLARE walk NO SCROLL CURSOR FOR
                         SELECT tree, key, value FROM {table} ORDER BY tree, key"
                )),
            )
            .await?;
            let fetch = format!("FETCH {} FROM walk", super::RECORDS_PER_READ);
            let (mut trees, mut last) = (0, None::<String>);
            loop {
                let rows = bounded(Instant::now() + within, client.query(&fetch, &[])).await?;
                if rows.is_empty() {
                    break;
                }
                for row in rows {
                    let tree: String = row.try_get(0).map_err(classify)?;
                    let key: Vec<u8> = row.try_get(1).map_err(classify)?;
                    let value: Vec<u8> = row.try_get(2).map_err(classify)?;
                    if last.as_deref() != Some(tree.as_str()) {
                        trees += 1;
                        last = Some(tree.clone());
                    }
                    each(&tree, String::from_utf8_lossy(&key).into_owned(), value)?;
                }
            }
            bounded(Instant::now() + within, client.batch_execute("COMMIT")).await?;
            Ok(trees)
        })
    }

    fn wrote(&self, applied: bool) -> bool {
        if applied {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        applied
    }
}

/// A call that could not send its statement in time.
fn late() -> Error {
    Error::Unavailable("no connection was ready in time to send the statement; not run".into())
}

/// Runs `blocking`, which drives a connection's own runtime, where that may happen: outside
/// every runtime. On a worker of a multi-threaded runtime through `block_in_place` (the
/// worker's other tasks move elsewhere meanwhile); on a single-threaded runtime, which may not
/// block, on a thread of its own; elsewhere directly.
fn off_the_runtime<T: Send>(blocking: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(blocking)
        }
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(blocking)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
        Err(_) => blocking(),
    }
}

/// What the calls share about the database's state.
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

/// A connection that could not be opened: refused for a reason a retry does not change (a
/// wrong password, a missing database: [`Error::Config`]), or for now
/// ([`Error::Unavailable`]).
fn unreachable(e: tokio_postgres::Error) -> Error {
    match classify(e) {
        Error::Storage(why) => Error::Config(format!("the database refused the connection: {why}")),
        other => other,
    }
}

/// A failed statement: the database or the way to it is (for now) unable to answer
/// ([`Error::Unavailable`]), or the statement itself failed ([`Error::Storage`]).
pub(super) fn classify(e: tokio_postgres::Error) -> Error {
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

fn entries(rows: Vec<tokio_postgres::Row>) -> Vec<(String, Vec<u8>)> {
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
        self.run(async move |c| {
            let row = c
                .client
                .query_opt(&c.statements.get, &[&tree.name(), &key])
                .await?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn put(&self, tree: Tree, key: &str, value: &[u8]) -> Result<()> {
        let (key, value) = (key.as_bytes().to_vec(), value.to_vec());
        self.run(async move |c| {
            c.client
                .execute(&c.statements.put, &[&tree.name(), &key, &value])
                .await
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
        let swapped = self.run(async move |c| {
            let s = &c.statements;
            let name = tree.name();
            Ok(match (expected, new) {
                (None, Some(new)) => {
                    c.client
                        .execute(&s.insert_new, &[&name, &key, &new])
                        .await?
                        == 1
                }
                (Some(old), Some(new)) => {
                    c.client
                        .execute(&s.update_if, &[&name, &key, &old, &new])
                        .await?
                        == 1
                }
                (Some(old), None) => {
                    c.client.execute(&s.delete_if, &[&name, &key, &old]).await? == 1
                }
                // "Absent, and leave it absent": true when there is nothing.
                (None, None) => c.client.query_opt(&s.get, &[&name, &key]).await?.is_none(),
            })
        })?;
        Ok(self.wrote(swapped))
    }

    fn take(&self, tree: Tree, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.as_bytes().to_vec();
        let taken: Option<Vec<u8>> = self.run(async move |c| {
            let row = c
                .client
                .query_opt(&c.statements.take, &[&tree.name(), &key])
                .await?;
            Ok(row.map(|row| row.get(0)))
        })?;
        self.wrote(taken.is_some());
        Ok(taken)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let prefix = prefix.as_bytes().to_vec();
        self.run(async move |c| {
            let name = tree.name();
            let rows = match after_prefix(&prefix) {
                Some(end) => {
                    c.client
                        .query(&c.statements.range, &[&name, &prefix, &end])
                        .await?
                }
                None => {
                    c.client
                        .query(&c.statements.from, &[&name, &prefix])
                        .await?
                }
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
        self.run(async move |c| {
            let name = tree.name();
            let rows = match after {
                Some(key) => {
                    c.client
                        .query(&c.statements.page_after, &[&name, &key, &limit])
                        .await?
                }
                None => {
                    c.client
                        .query(&c.statements.page_first, &[&name, &limit])
                        .await?
                }
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

    fn written_beside_the_server(&self) -> bool {
        true
    }

    /// One read-only transaction at `REPEATABLE READ` reads every record through a cursor,
    /// [`RECORDS_PER_READ`](super::RECORDS_PER_READ) at a time: one snapshot, however the
    /// replicas write meanwhile. Each fetch is bounded like any call.
    fn for_each_record(&self, each: &mut super::EachRecord<'_>) -> Result<usize> {
        if let Some(why) = self.health.still_failing() {
            return Err(Error::Unavailable(why));
        }
        let send_by = Deadlines::from_now(&self.settings).send_by;
        off_the_runtime(|| {
            self.pool.with_slot(send_by, |slot| {
                self.make_ready(slot, send_by)?;
                let walked = self.walk(slot, each);
                slot.last_used = Instant::now();
                if walked.is_err() {
                    // Possibly left inside its transaction (its driver stops with it).
                    slot.connection = None;
                }
                walked
            })
        })
    }

    fn tree_names(&self) -> Result<Vec<String>> {
        self.run(async |c| {
            let rows = c.client.query(&c.statements.trees, &[]).await?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PostgresSettings {
        let mut config = tokio_postgres::Config::new();
        config.host("db.invalid").user("e2ei").dbname("e2ei");
        PostgresSettings {
            config,
            tls: None,
            schema: "e2ei".into(),
            pool_size: 4,
            connect_timeout: Duration::from_millis(3_000),
            statement_timeout: Duration::from_millis(5_000),
        }
    }

    #[test]
    fn a_migration_has_no_statement_timeout_but_both_kinds_give_a_vanished_host_up() {
        let settings = settings();
        let serving = settings.serving_config();
        let migrating = settings.migration_config();
        for (config, liveness) in [
            (&serving, Liveness::serving(settings.answer_within())),
            (&migrating, Liveness::migrating(settings.answer_within())),
        ] {
            assert_eq!(
                config.get_connect_timeout(),
                Some(&settings.connect_timeout)
            );
            let mut expected = tokio_postgres::Config::new();
            liveness.apply(&mut expected);
            assert!(config.get_keepalives());
            assert_eq!(config.get_keepalives_idle(), expected.get_keepalives_idle());
            assert_eq!(
                config.get_tcp_user_timeout(),
                expected.get_tcp_user_timeout()
            );
            let options = config.get_options().unwrap_or_default();
            assert!(options.contains(&liveness.server_options()), "{options}");
            assert!(options.contains("synchronous_commit=on"), "{options}");
        }
        assert_eq!(
            serving.get_tcp_user_timeout(),
            Some(&Duration::from_secs(8))
        );
        assert_eq!(
            migrating.get_tcp_user_timeout(),
            Some(&Duration::from_secs(60))
        );
        let serving = serving.get_options().unwrap_or_default();
        assert!(serving.contains("statement_timeout=5000"), "{serving}");
        let migrating = migrating.get_options().unwrap_or_default();
        assert!(!migrating.contains("statement_timeout"), "{migrating}");
        assert!(!migrating.contains("lock_timeout"), "{migrating}");
        assert!(
            migrating.contains("idle_in_transaction_session_timeout=8000"),
            "{migrating}"
        );
    }

    #[test]
    fn the_options_of_the_url_are_kept_before_the_servers_own() {
        let mut settings = settings();
        settings
            .config
            .options("-c work_mem=8MB -c statement_timeout=1");
        for config in [settings.serving_config(), settings.migration_config()] {
            let options = config.get_options().unwrap_or_default();
            assert!(
                options.starts_with("-c work_mem=8MB -c statement_timeout=1 -c "),
                "{options}"
            );
            assert!(options.contains("synchronous_commit=on"), "{options}");
        }
        let serving = settings.serving_config();
        let serving = serving.get_options().unwrap_or_default();
        let liveness = Liveness::serving(settings.answer_within()).server_options();
        assert!(serving.ends_with(&liveness), "{serving}");
        let last = serving.rfind("statement_timeout=").unwrap_or_default();
        assert_eq!(
            &serving[last..last + 22],
            "statement_timeout=5000",
            "{serving}"
        );
    }

    #[test]
    fn the_bound_after_a_prefix_covers_exactly_the_keys_starting_with_it() {
        assert_eq!(after_prefix(b"u1/").as_deref(), Some(&b"u10"[..]));
        assert_eq!(after_prefix(b"a\xff\xff").as_deref(), Some(&b"b"[..]));
        assert_eq!(after_prefix(b"\xff"), None);
        assert_eq!(after_prefix(b""), None);
    }
}
