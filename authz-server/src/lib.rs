//! The backend of the enrollment service: an OAuth 2.1 / OpenID Provider that authenticates
//! users, registers their devices, and issues the DPoP access tokens devices present to the ACME
//! server as `wire-dpop-01` challenge proof (DESIGN §4, §5).
//!
//! Modules by job: [`config`], [`store`] (the only module that touches sled), [`keys`] (key
//! files and dev PKI), [`users`] (users and OAuth clients), [`devices`] (devices and backend
//! nonces), [`grants`] (authorization codes with PKCE), [`tokens`] (user tokens and their
//! validation), [`claims`] (the user claims each scope releases), [`scopes`] (scope values and
//! what each client may be granted), [`http`] (the front end), [`server`] (start/stop),
//! [`error`] (the one error type and its wire forms).

pub mod claims;
pub mod cleanup;
pub mod config;
pub mod consents;
pub mod device_grant;
pub mod devices;
pub mod error;
pub mod grants;
pub mod http;
pub mod keys;
pub mod password_pool;
pub mod rate_limits;
pub mod refresh;
pub mod scopes;
pub mod server;
pub mod store;
pub mod tokens;
pub mod users;

pub use config::Config;
pub use error::{Error, Result};
pub use server::{RunningServer, start};
