//! RFC 8555 ACME server and identity CA that accepts Wire DPoP access tokens (`wire-dpop-01`)
//! and OpenID ID tokens (`wire-oidc-01`) as challenge proof (DESIGN §2, §4, §5).
//!
//! Split by security context the way Boulder is, as modules behind narrow interfaces in one
//! process: [`wfe`] (HTTP front end: JWS intake, rendering, problem responses), [`ra`]
//! (accounts, orders, authorizations, policy), [`va`] (challenge validators), [`ca`]
//! (issuance), [`sa`] (storage, the only module that touches the store) and [`nonce`]. Each part
//! uses only the parts below it: the front end the registration authority, a read-only view of
//! the store and its durability; the registration authority the validation, certificate and
//! storage authorities; and all of them [`model`] (identifiers, names, order profiles, records)
//! and [`error`] (the one error type). [`config`] and [`server`] (start/stop) serve them all.

pub mod ca;
pub mod config;
pub mod error;
pub mod model;
pub mod nonce;
pub mod ra;
pub mod sa;
pub mod server;
pub mod va;
pub mod wfe;

pub use config::Config;
pub use error::{Error, Result};
pub use server::{RunningServer, start};
