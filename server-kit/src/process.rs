//! What a server binary does around its server: create every file owner-only, log to stderr
//! (filter from `RUST_LOG`, default `info`), and wait for SIGINT or SIGTERM before a graceful
//! shutdown.

use crate::{Error, Result};

/// What a server binary does first: files and directories it creates from now on are its
/// owner's only (umask 077: the store's files 0600, its directories 0700, whatever the umask
/// of the shell that started it), then the stderr log subscriber.
pub fn init() {
    owner_only_files();
    init_logging();
}

/// From now on, files and directories this process creates are its owner's only (umask 077).
pub fn owner_only_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Installs the stderr log subscriber.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs `future` to completion on a new multi-threaded tokio runtime.
pub fn block_on<T, E, F>(future: F) -> std::result::Result<T, E>
where
    F: std::future::Future<Output = std::result::Result<T, E>>,
    E: From<std::io::Error>,
{
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// The exit code of a binary's run: failures are printed as `{program}: {error}` (with the
/// whole chain of causes where the error has one).
pub fn exit_code<E: std::fmt::Display>(
    program: &str,
    result: std::result::Result<(), E>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment [`ShutdownSignal::install`] returns: install it
/// before announcing that the server is ready, so a supervisor that stops the server right
/// after the announcement gets a graceful shutdown (exit 0), never the default action of the
/// signal.
#[derive(Debug)]
pub struct ShutdownSignal {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Starts catching the signals (inside a tokio runtime).
    pub fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let catch = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::Server(format!("{name} handler: {e}")))
        };
        Ok(Self {
            term: catch(SignalKind::terminate(), "SIGTERM")?,
            interrupt: catch(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// Resolves on the first SIGINT or SIGTERM since [`Self::install`].
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.term.recv() => {}
        }
        tracing::info!("shutting down");
    }
}
