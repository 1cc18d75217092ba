//! The backend of the enrollment service: an OAuth 2.1 / OpenID Provider that authenticates
//! users, registers their devices, and issues the DPoP access tokens devices present to the ACME
//! server as `wire-dpop-01` challenge proof (DESIGN §4, §5).
//!
//! Three layers, each calling only the one below it:
//!
//! - the HTTP front end, [`http`]: parses requests, authenticates the caller, calls a service,
//!   renders the answer (errors render themselves, [`error`]);
//! - the services, operations of the [`provider::Provider`]: the token endpoint's grants
//!   ([`grants`]), authorization at `/authorize` ([`authorization`], [`consents`]), the device
//!   authorization grant ([`device_grant`]), Wire devices and their tokens ([`devices`]), who
//!   the user is and what they get ([`identity`], [`users`]), login through upstream identity
//!   providers ([`federation`]), through remote verifiers ([`remote_auth`]) and by RFC 7523
//!   assertions of trusted issuers ([`jwt_bearer`]), claims from the user's own permission
//!   services ([`claims_sources`]), GA4GH Passports ([`passports`]), OAuth clients
//!   ([`oauth_clients`]), scopes ([`scopes`]), DPoP proofs as proof values ([`dpop`]), and our
//!   tokens ([`tokens`]);
//! - the storage boundary, [`store`]: the only module that names a collection or calls the
//!   store.
//!
//! Around them: [`config`], [`keys`] (key files), [`password_pool`], [`rate_limits`],
//! [`server`] (start/stop) and [`demo`] (dev-mode data).

pub mod authorization;
pub mod claims_sources;
pub mod config;
pub mod consents;
pub mod demo;
pub mod device_grant;
pub mod devices;
pub mod dpop;
pub mod error;
pub mod federation;
pub mod grants;
pub mod http;
pub mod identity;
pub mod jwt_bearer;
pub mod keys;
pub mod oauth_clients;
pub mod passports;
pub mod password_check;
pub mod password_pool;
pub mod provider;
pub mod rate_limits;
pub mod remote_auth;
pub mod scopes;
pub mod server;
pub mod sessions;
pub mod store;
pub mod tokens;
pub mod users;

pub use config::Config;
pub use error::{Error, Result};
pub use server::{RunningServer, start};
