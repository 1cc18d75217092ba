//! How a connection to PostgreSQL ends when the other side vanishes: a host switched off or cut
//! off by the network sends nothing, not even a reset, so without these a connection waits on it
//! for the kernel's default of more than two hours.
//!
//! - **Our side.** TCP keepalives probe a connection idle for 30 s, every 10 s. With Linux's
//!   `TCP_USER_TIMEOUT` set, the kernel breaks the connection when a probe is unanswered and
//!   nothing has been received for the user timeout (it then ignores the probe count), and
//!   when data sent stays unacknowledged that long. A host that is only busy (a long statement
//!   running) acknowledges probes and data from its kernel, so neither bounds how long a
//!   statement runs; a test holds a connection probed every second through a statement of
//!   several.
//! - **The database's side** (PostgreSQL 15, the version the project requires). The backend
//!   probes us the same way (`tcp_keepalives_*`, `tcp_user_timeout`), so the connection of a
//!   server that vanished is ended as ours would be: idle, at the first unanswered probe after
//!   the user timeout; with its answer unacknowledged (the kernel does not probe then), after
//!   the user timeout. Its transaction is rolled back, its locks (the migration's advisory
//!   lock) released, its place among the database's connections given back. A backend looks
//!   at its connection only between statements, unless told to check it while one runs
//!   (`client_connection_check_interval`): the migrating connection is, every 10 s, so a long
//!   migration statement of a vanished server is cancelled too.

use std::time::Duration;

/// When a connection gives a silent peer up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Liveness {
    /// Probes start after this long without traffic, ...
    idle: Duration,
    /// ... this far apart, ...
    interval: Duration,
    /// ... and the database's side ends the connection after this many unanswered.
    probes: u32,
    /// Either side ends it when data stays unacknowledged this long, or a probe is unanswered
    /// and nothing was received for this long.
    user_timeout: Duration,
    /// How often the database checks, while a statement runs, that its connection still
    /// stands (none: between statements only).
    check_while_running: Option<Duration>,
}

/// Probes after this long idle.
const IDLE: Duration = Duration::from_secs(30);
/// Probes this far apart.
const INTERVAL: Duration = Duration::from_secs(10);
/// Probes unanswered before the connection ends.
const PROBES: u32 = 3;
/// How often the database checks a migrating connection while a statement runs.
const CHECK_WHILE_RUNNING: Duration = Duration::from_secs(10);

impl Liveness {
    /// A serving connection: data unacknowledged for longer than a call may take
    /// (`answer_within`) breaks it, and an idle one whose host stopped answering is broken at
    /// the first unanswered probe (40 s after the host's last packet, while `answer_within` is
    /// shorter); the pool opens another.
    pub(super) fn serving(answer_within: Duration) -> Self {
        Self {
            idle: IDLE,
            interval: INTERVAL,
            probes: PROBES,
            user_timeout: answer_within,
            check_while_running: None,
        }
    }

    /// The connection that migrates the schema, whose statements may run for long: every
    /// probe gets its chance before it is broken (60 s after the host's last packet), so a
    /// lost probe does not end an index build, and data unacknowledged for `answer_within`
    /// or that minute, whichever is longer, breaks it too. The database checks the connection
    /// while a statement runs (a serving statement ends within `statement_timeout` anyway).
    pub(super) fn migrating(answer_within: Duration) -> Self {
        let every_probe = IDLE + INTERVAL * PROBES;
        Self {
            user_timeout: answer_within.max(every_probe),
            check_while_running: Some(CHECK_WHILE_RUNNING),
            ..Self::serving(answer_within)
        }
    }

    /// Sets our side's keepalives and user timeout on `config`.
    pub(super) fn apply(&self, config: &mut tokio_postgres::Config) {
        config
            .keepalives(true)
            .keepalives_idle(self.idle)
            .keepalives_interval(self.interval)
            .keepalives_retries(self.probes)
            .tcp_user_timeout(self.user_timeout);
    }

    /// The options that make the database's side probe us the same way.
    pub(super) fn server_options(&self) -> String {
        let mut options = format!(
            "-c tcp_keepalives_idle={} -c tcp_keepalives_interval={} -c tcp_keepalives_count={} \
             -c tcp_user_timeout={}",
            self.idle.as_secs().max(1),
            self.interval.as_secs().max(1),
            self.probes,
            self.user_timeout.as_millis()
        );
        if let Some(every) = self.check_while_running {
            options += &format!(" -c client_connection_check_interval={}", every.as_millis());
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_outlasts_every_probe_and_a_serving_connection_a_call() {
        let answer_within = Duration::from_secs(8);
        let serving = Liveness::serving(answer_within);
        assert_eq!(serving.user_timeout, answer_within);
        let migrating = Liveness::migrating(answer_within);
        assert_eq!(migrating.user_timeout, Duration::from_secs(60));
        assert_eq!(
            Liveness::migrating(Duration::from_secs(90)).user_timeout,
            Duration::from_secs(90)
        );
        assert_eq!(
            serving.server_options(),
            "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3 \
             -c tcp_user_timeout=8000"
        );
        assert_eq!(
            migrating.server_options(),
            "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3 \
             -c tcp_user_timeout=60000 -c client_connection_check_interval=10000"
        );
    }

    /// Probed every second from both sides with a one-second user timeout, and checked every
    /// second by the database while a statement runs, a connection to a live database keeps
    /// running a statement of several seconds: the probes are answered by the kernels while
    /// the backend is busy. The database accepts the options and applies them
    /// (over TCP: on a Unix socket it would show 0). What a vanished peer does is not tested
    /// here: on loopback the kernel answers for any process, and dropping packets would take
    /// firewall rules a test should not set.
    #[test]
    fn a_busy_database_answers_the_probes_so_a_long_statement_is_not_cut() {
        let pg = crate::testing::TestPostgres::start();
        let fast = Liveness {
            idle: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            probes: 1,
            user_timeout: Duration::from_secs(1),
            check_while_running: Some(Duration::from_secs(1)),
        };
        let mut config: tokio_postgres::Config = pg.url().parse().unwrap();
        let password = std::fs::read_to_string(pg.password_file()).unwrap();
        config.password(password.trim());
        fast.apply(&mut config);
        config.options(fast.server_options());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
            let driver = tokio::spawn(connection);
            for (setting, applied) in [
                ("tcp_keepalives_idle", "1"),
                ("tcp_user_timeout", "1000"),
                ("client_connection_check_interval", "1s"),
            ] {
                let shown = client.query_one(&format!("SHOW {setting}"), &[]).await;
                assert_eq!(shown.unwrap().get::<_, String>(0), applied, "{setting}");
            }
            let slept = client.batch_execute("SELECT pg_sleep(4)").await;
            assert!(slept.is_ok(), "a probed connection was cut: {slept:?}");
            drop(client);
            driver.await.unwrap().unwrap();
        });
    }
}
