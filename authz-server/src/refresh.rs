//! Refresh tokens (RFC 6749 §6, OAuth 2.1 §4.3): opaque, 256 random bits, stored by digest,
//! rotated on every use. Every token descends from one family; presenting a token that was
//! already used revokes the whole family and the access tokens it produced (reuse detection,
//! RFC 9700 §4.14). A token issued to a DPoP proof is bound to that key (`jkt`).

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{Store, trees};

/// A stored refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// The family it belongs to.
    pub family: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// Granted scope.
    pub scope: String,
    /// The DPoP key it is bound to.
    pub jkt: Option<String>,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Whether it was exchanged already.
    pub used: bool,
}

/// A family of refresh tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Family {
    /// Revoked (reuse detected, or revoked by the client).
    pub revoked: bool,
    /// Access tokens issued from it, revoked with it.
    pub access_jtis: Vec<String>,
    /// When its newest refresh token expires: after that nothing can use or revoke the family
    /// and the cleanup removes it.
    #[serde(default)]
    pub expires_at: Option<UnixTime>,
}

fn key(token: &str) -> String {
    proto::b64::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a refresh token; a new family unless `family` is given.
pub fn issue(
    store: &dyn Store,
    family: Option<&str>,
    template: &RefreshRecord,
    access_jti: &str,
) -> Result<String> {
    let family = match family {
        Some(f) => f.to_owned(),
        None => proto::random::token(128),
    };
    let mut fam: Family = store
        .get_json(trees::REFRESH_FAMILIES, &family)?
        .unwrap_or_default();
    fam.access_jtis.push(access_jti.to_owned());
    fam.expires_at = fam.expires_at.max(Some(template.expires_at));
    store.put_json(trees::REFRESH_FAMILIES, &family, &fam)?;
    let token = proto::random::token(256);
    let record = RefreshRecord {
        family,
        used: false,
        ..template.clone()
    };
    store.put_json(trees::REFRESH_TOKENS, &key(&token), &record)?;
    Ok(token)
}

/// Looks a refresh token up without using it (introspection).
pub fn peek(store: &dyn Store, token: &str, now: UnixTime) -> Result<Option<RefreshRecord>> {
    let Some(record) = store.get_json::<RefreshRecord>(trees::REFRESH_TOKENS, &key(token))? else {
        return Ok(None);
    };
    let family: Family = store
        .get_json(trees::REFRESH_FAMILIES, &record.family)?
        .unwrap_or_default();
    Ok((!record.used && !family.revoked && record.expires_at >= now).then_some(record))
}

/// Revokes a family and its access tokens.
pub fn revoke_family(store: &dyn Store, family: &str, now: UnixTime) -> Result<()> {
    let mut fam: Family = store
        .get_json(trees::REFRESH_FAMILIES, family)?
        .unwrap_or_default();
    fam.revoked = true;
    for jti in &fam.access_jtis {
        crate::tokens::revoke(store, jti, now)?;
    }
    store.put_json(trees::REFRESH_FAMILIES, family, &fam)?;
    Ok(store.flush()?)
}

/// Exchanges a refresh token of `client_id`: it becomes used; reuse revokes the family.
pub fn redeem(
    store: &dyn Store,
    token: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<RefreshRecord> {
    let invalid = |d: &str| Error::invalid_grant(d.to_owned());
    let k = key(token);
    let stored = store
        .get_versioned::<RefreshRecord>(trees::REFRESH_TOKENS, &k)?
        .ok_or_else(|| invalid("unknown refresh token"))?;
    let record = stored.value.clone();
    if record.client_id != client_id {
        return Err(invalid("the refresh token was issued to another client"));
    }
    let family: Family = store
        .get_json(trees::REFRESH_FAMILIES, &record.family)?
        .unwrap_or_default();
    if family.revoked {
        return Err(invalid("the refresh token was revoked"));
    }
    if record.expires_at < now {
        return Err(invalid("the refresh token expired"));
    }
    let mut used = record.clone();
    used.used = true;
    if record.used || !store.replace_json(trees::REFRESH_TOKENS, &k, &stored, &used)? {
        revoke_family(store, &record.family, now)?;
        tracing::warn!(client_id, "refresh token reuse; family revoked");
        return Err(invalid(
            "the refresh token was already used; its family is revoked",
        ));
    }
    Ok(record)
}

/// Revokes the family of a refresh token of `client_id` (RFC 7009); false if it is not one.
pub fn revoke(store: &dyn Store, token: &str, client_id: &str, now: UnixTime) -> Result<bool> {
    match store.get_json::<RefreshRecord>(trees::REFRESH_TOKENS, &key(token))? {
        Some(r) if r.client_id == client_id => {
            revoke_family(store, &r.family, now)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
