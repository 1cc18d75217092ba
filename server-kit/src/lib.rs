//! Plumbing both servers share and no protocol logic needs: the durable key-value [`store`] and
//! its batched flushing ([`group_commit`]) and background garbage collection ([`cleanup`]),
//! owner-only key [`files`] and data directories, TLS set-up with a generated dev PKI ([`tls`]),
//! running an axum router over HTTPS with one log event per request ([`serve`]) within the
//! [`limits`] of one client, token-bucket [`rate_limit`]s, the [`audit`] log, bounded reads of
//! what other servers answer ([`fetch`]), and what a server [`process`] does around its server, on the [`runtime`] threads it plans for.
//!
//! Nothing here knows about OAuth, ACME or Wire; each server maps [`Error`] into its own error
//! type.

pub mod audit;
pub use io_kit::files;
pub mod cleanup;
pub mod flight;
pub use io_kit::fetch;
pub mod group_commit;
pub mod health;
pub mod limits;
pub mod process;
pub mod rate_limit;
pub mod runtime;
pub mod serve;
pub mod store;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tls;

/// Failures of the shared plumbing (the same type as `io_kit`'s, which holds the parts the
/// device SDK shares with the servers).
pub use io_kit::{Error, Result};
