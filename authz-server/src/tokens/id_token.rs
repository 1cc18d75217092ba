//! OpenID Connect ID tokens (OIDC Core §2): `iss`, `sub`, `aud` and `azp` (the client), `iat`,
//! `exp`, `auth_time`, `jti`, `nonce`, `at_hash` of the access token issued with it, the user
//! claims the scope releases ([`crate::identity::claims`]) and the echoed `keyauth` and
//! `acme_aud`.

use proto::clock::UnixTime;
use proto::jws::Claims;
use sha2::{Digest, Sha256};

use super::Issuer;
use crate::error::Result;
use crate::identity::claims::{EchoedClaims, user_claims};
use crate::store::users::User;

/// What an ID token is issued for, besides the user.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenGrant<'a> {
    /// `aud` and `azp`.
    pub client_id: &'a str,
    /// The granted scope: which user claims the token carries.
    pub scope: &'a str,
    /// The authorization request's `nonce` (none in the device flow, which has no
    /// authorization request).
    pub nonce: Option<&'a str>,
    /// When the user authenticated (`auth_time`), when known.
    pub auth_time: Option<UnixTime>,
    /// Values a `claims` request asked to see echoed (`keyauth`, `acme_aud`).
    pub echoed: &'a EchoedClaims,
}

/// Signs an ID token for `user`, issued with `access_token` (`at_hash`, OIDC Core §3.1.3.6).
pub fn issue(
    issuer: &Issuer<'_>,
    grant: &IdTokenGrant<'_>,
    user: &User,
    access_token: &str,
    now: UnixTime,
) -> Result<String> {
    let mut id = Claims(user_claims(user, grant.scope)?);
    id.set("iss", issuer.url);
    id.set("aud", grant.client_id);
    id.set("azp", grant.client_id);
    id.set("iat", now);
    id.set("exp", now + issuer.id_lifetime);
    if let Some(auth_time) = grant.auth_time {
        id.set("auth_time", auth_time);
    }
    id.set("jti", proto::random::uuid_v4());
    if let Some(nonce) = grant.nonce {
        id.set("nonce", nonce);
    }
    let digest = Sha256::digest(access_token.as_bytes());
    id.set("at_hash", proto::b64::encode(&digest[..16]));
    if let Some(keyauth) = &grant.echoed.keyauth {
        id.set(proto::wire_claims::KEYAUTH, keyauth.clone());
    }
    if let Some(acme_aud) = &grant.echoed.acme_aud {
        id.set(proto::wire_claims::ACME_AUD, acme_aud.clone());
    }
    Ok(issuer.key.sign_jwt("JWT", false, &id.0)?)
}
