//! The device side of the enrollment: from a small [`Config`] (ACME directory, authz-server,
//! trust roots, login method, key algorithm) to a verified identity certificate.
//!
//! [`Enrollment::run`] logs in (authorization code + PKCE: credentials for headless devices, or
//! an application's [`login::AuthorizationUi`] such as the RFC 8252 [`login::LoopbackBrowser`]),
//! registers the device, creates the ACME account and identity order, obtains the backend's DPoP
//! access token with a proof signed by the account key, answers `wire-dpop-01`, obtains an ID
//! token carrying the key authorization (from the authz-server, or from the organisation's own
//! OpenID Provider, [`id_provider`]) and answers `wire-oidc-01`, finalizes with a CSR of a
//! fresh credential key, downloads the chain and verifies it and the certified identity. Each
//! step is reported to an [`Observer`] with its duration and fails with an [`Error`] naming it.
//! [`store`] keeps the result in a directory (keys 0600) for `show` and renewal.

pub mod acme;
pub mod authz;
pub mod certificate;
pub mod config;
pub mod enroll;
pub mod error;
mod http;
pub mod id_provider;
pub mod login;
pub mod step;
pub mod store;

pub use config::{Config, KeyAlgorithm, Login};
pub use enroll::{Enrolled, Enrollment, Previous};
pub use error::{Cause, Error, Result};
pub use id_provider::IdTokenProvider;
pub use step::{Observer, Step, StepPrinter};
