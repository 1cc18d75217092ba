//! Plumbing both servers share and no protocol logic needs: the durable key-value [`store`] and
//! its batched flushing ([`group_commit`]) and background garbage collection ([`cleanup`]),
//! owner-only key [`files`] and data directories, TLS set-up with a generated dev PKI ([`tls`]),
//! running an axum router over HTTPS with one log event per request ([`serve`]) within the
//! [`limits`] of one client, token-bucket [`rate_limit`]s, the [`audit`] log, bounded reads of
//! what other servers answer ([`fetch`]), and what a server [`process`] does around its server.
//!
//! Nothing here knows about OAuth, ACME or Wire; each server maps [`Error`] into its own error
//! type.

pub mod audit;
pub mod cleanup;
pub mod fetch;
pub mod files;
pub mod group_commit;
pub mod limits;
pub mod process;
pub mod rate_limit;
pub mod serve;
pub mod store;
pub mod tls;

/// Failures of the shared plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed or holds a record that does not decode.
    #[error("storage: {0}")]
    Storage(String),
    /// A file, key, certificate or address is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The server task failed.
    #[error("server: {0}")]
    Server(String),
    /// An outbound fetch failed: the peer could not be reached, answered an error status, or
    /// sent a body that is too large or does not parse.
    #[error("fetch: {0}")]
    Fetch(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
