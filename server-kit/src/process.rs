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

/// Installs the stderr log subscriber: colours only on a terminal, plain text into a file or a
/// pipe (a supervisor's log, `grep`).
pub fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

pub use io_kit::process::{
    CRASH_AT, block_on, crash_point, exit_code, input_given, owner_only_files,
};

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
