//! Shared protocol library of the enrollment service.
//!
//! Everything both servers and the device SDK must agree on lives here, and nothing else:
//! JWK and RFC 7638 thumbprints ([`jwk`]), compact JWS signing and verification with an
//! explicit algorithm allow-list ([`jws`]), RFC 9449 DPoP proofs with the Wire claims ([`dpop`]),
//! the Wire DPoP access token ([`access_token`]), Wire identifiers ([`wire_id`]), URI
//! normalisation for `htu` ([`htu`]), secrets ([`secret`]) and an injectable [`clock`]; the
//! ACME wire types ([`acme`]) and request JWS ([`acme_jws`]), OpenID ID tokens as `wire-oidc-01`
//! proof ([`id_token`]), X.509 public keys as JWKs ([`spki`]), RFC 3339 times ([`rfc3339`]) and
//! GA4GH Passport Visas, made and verified ([`visa`]).
//!
//! The crate performs no I/O: time comes from a [`clock::Clock`], randomness from the OS RNG,
//! and every check that fails returns its own [`Error`] variant so callers can map it to the
//! exact wire error they must emit.
//!
//! Signing and verification are ring's; no foreign type appears in the public API.

pub mod access_token;
pub mod acme;
pub mod acme_jws;
pub mod b64;
pub mod clock;
pub mod dpop;
pub mod dpop_nonce;
pub mod eab;
pub mod ed25519;
mod error;
pub mod htu;
pub mod id_token;
pub mod jwk;
pub mod jws;
pub mod pkce;
pub mod pkcs8;
pub mod random;
pub mod resource;
pub mod rfc3339;
pub mod secret;
pub mod spki;
#[cfg(any(test, feature = "test-keys"))]
pub mod test_keys;
pub mod visa;
pub mod wire_claims;
pub mod wire_id;

pub use error::{Error, Result};
