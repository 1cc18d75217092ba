//! This server's own tokens: RFC 9068 JWT access tokens ([`access_token`]) and OpenID Connect
//! ID tokens ([`id_token`]) signed with its key, and their validation when they come back — at
//! its resource endpoints ([`resource`]) and at introspection and revocation
//! ([`introspection`]). What a token is issued for is decided by the services that call these
//! (the token endpoint's grants); nothing here reads a grant.

pub mod access_token;
pub mod id_token;
pub mod introspection;
pub mod resource;

use proto::jws::SigningKey;

use crate::provider::Provider;

/// What signing a token of this server takes.
#[derive(Debug, Clone)]
pub struct Issuer<'a> {
    /// The issuer URL.
    pub url: &'a str,
    /// The signing key.
    pub key: std::sync::Arc<SigningKey>,
    /// Access token lifetime.
    pub access_lifetime: i64,
    /// ID token lifetime.
    pub id_lifetime: i64,
}

impl Provider {
    /// The token issuer view of the provider.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            url: &self.base_url,
            key: self.signing_key(),
            access_lifetime: self.config.lifetimes.access_token,
            id_lifetime: self.config.lifetimes.id_token,
        }
    }
}
