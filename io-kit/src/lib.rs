//! What the servers and the device SDK both need to touch the disk and the network safely,
//! and nothing that only a server needs: owner-only [`files`] and data directories, the
//! [`https`] client that trusts exactly the roots it is given, bounded reads of what other
//! servers answer ([`fetch`]), and what a binary does around its work ([`process`]). A device build links no store, no HTTP server and no system library
//! through this crate.

pub mod fetch;
pub mod files;
pub mod https;
pub mod process;

/// Failures of the shared plumbing (the servers' `server-kit` uses the same type).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed or holds a record that does not decode.
    #[error("storage: {0}")]
    Storage(String),
    /// The store cannot answer for now (its database is unreachable, overloaded or shutting
    /// down): the request may succeed when retried in a moment.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
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
