//! OpenID Connect ID tokens (OIDC Core §2): `iss`, `sub`, `aud` and `azp` (the client), `iat`,
//! `exp`, `auth_time`, `amr`, `sid`, `jti`, `nonce`, `at_hash` of the access token issued with it, the user
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
    /// How (`amr`), when known.
    pub amr: &'a [String],
    /// The browser session holding the login (`sid`, OpenID Connect Front-Channel Logout §3).
    pub sid: Option<&'a str>,
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
    if !grant.amr.is_empty() {
        id.set("amr", grant.amr);
    }
    if let Some(sid) = grant.sid {
        id.set("sid", sid);
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
/// What an `id_token_hint` (OpenID Connect RP-Initiated Logout 1.0 §2) says: one of our ID
/// tokens, expired or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// `sub`.
    pub sub: String,
    /// `aud` (our ID tokens name one client).
    pub client_id: String,
    /// `sid`, when the login was held by a session.
    pub sid: Option<String>,
}

/// Reads an `id_token_hint`: signed by one of `keys` (chosen by `kid`), issued by `issuer`; its
/// expiry does not matter (a hint names who, it grants nothing). Why not, otherwise.
pub fn read_hint(
    token: &str,
    keys: &[proto::jwk::Jwk],
    issuer: &str,
) -> std::result::Result<IdTokenHint, String> {
    let jws = proto::jws::UnverifiedJws::from_compact(token)
        .map_err(|_| "id_token_hint is not a JWS".to_owned())?;
    let kid = jws.header().kid().map(str::to_owned);
    let key = keys
        .iter()
        .find(|k| kid.is_some() && k.kid == kid)
        .ok_or_else(|| "id_token_hint is not signed by a key of this server".to_owned())?;
    let claims = jws
        .verify(key)
        .and_then(|v| v.claims())
        .map_err(|_| "id_token_hint has a bad signature".to_owned())?;
    let text = |name: &'static str| {
        claims
            .string(name)
            .map(str::to_owned)
            .map_err(|_| format!("id_token_hint has no {name}"))
    };
    if text("iss")? != issuer {
        return Err("id_token_hint was issued by another server".into());
    }
    Ok(IdTokenHint {
        sub: text("sub")?,
        client_id: text("aud")?,
        sid: text("sid").ok(),
    })
}
