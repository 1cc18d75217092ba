//! Refresh tokens (RFC 6749 §6, OAuth 2.1 §4.3): opaque, 256 random bits, stored by digest,
//! rotated on every use. Every token descends from one family; presenting a token that was
//! already used revokes the whole family and the access tokens it produced (reuse detection,
//! RFC 9700 §4.14), and so does a replay of the authorization code that started the family
//! ([`crate::grants`]). A token issued to a DPoP proof is bound to that key (`jkt`).
//!
//! The family record changes only by compare-and-swap: a rotation adds its access token to the
//! family unless the family is revoked, and a revocation revokes exactly the access tokens of
//! the family it marked revoked, so a rotation racing a revocation either is revoked with the
//! family or refused.

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
    /// When the user granted what this family carries (kept across rotations): a consent
    /// withdrawn at or after it voids the family.
    #[serde(default)]
    pub granted_at: UnixTime,
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

/// A refresh token just issued and the family it belongs to.
#[derive(Debug)]
pub struct Issued {
    /// The refresh token.
    pub token: String,
    /// Its family.
    pub family: String,
}

/// Starts a new family for `template` whose first access token is `access_jti`, and issues
/// its first refresh token.
pub fn start_family(
    store: &dyn Store,
    template: &RefreshRecord,
    access_jti: &str,
) -> Result<Issued> {
    let family = proto::random::token(128);
    let record = Family {
        revoked: false,
        access_jtis: vec![access_jti.to_owned()],
        expires_at: Some(template.expires_at),
    };
    if !store.insert_new_json(trees::REFRESH_FAMILIES, &family, &record)? {
        return Err(Error::Internal("refresh family id collision".into()));
    }
    let token = store_token(store, &family, template)?;
    Ok(Issued { token, family })
}

/// Issues the next refresh token of `family` (a rotation) with the access token `access_jti`;
/// `invalid_grant` when the family is gone or was revoked meanwhile.
pub fn continue_family(
    store: &dyn Store,
    family: &str,
    template: &RefreshRecord,
    access_jti: &str,
) -> Result<String> {
    let updated = update_family(store, family, |fam| {
        if fam.revoked {
            return Err(Error::invalid_grant("the refresh token was revoked"));
        }
        fam.access_jtis.push(access_jti.to_owned());
        fam.expires_at = fam.expires_at.max(Some(template.expires_at));
        Ok(())
    })?;
    if updated.is_none() {
        return Err(Error::invalid_grant("the refresh token family is gone"));
    }
    store_token(store, family, template)
}

fn store_token(store: &dyn Store, family: &str, template: &RefreshRecord) -> Result<String> {
    let token = proto::random::token(256);
    let record = RefreshRecord {
        family: family.to_owned(),
        used: false,
        ..template.clone()
    };
    store.put_json(trees::REFRESH_TOKENS, &key(&token), &record)?;
    Ok(token)
}

/// Changes a family record by compare-and-swap, retrying on a concurrent change; returns the
/// record written, or `None` when there is no such family.
fn update_family(
    store: &dyn Store,
    family: &str,
    mut change: impl FnMut(&mut Family) -> Result<()>,
) -> Result<Option<Family>> {
    loop {
        let Some(stored) = store.get_versioned::<Family>(trees::REFRESH_FAMILIES, family)? else {
            return Ok(None);
        };
        let mut next = stored.value.clone();
        change(&mut next)?;
        if store.replace_json(trees::REFRESH_FAMILIES, family, &stored, &next)? {
            return Ok(Some(next));
        }
    }
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

/// Revokes a family and every access token issued in it; a family that is gone (expired and
/// swept, with its refresh tokens) has nothing left to revoke. Durable on return.
pub fn revoke_family(store: &dyn Store, family: &str, now: UnixTime) -> Result<()> {
    let revoked = update_family(store, family, |fam| {
        fam.revoked = true;
        Ok(())
    })?;
    for jti in revoked.iter().flat_map(|f| &f.access_jtis) {
        crate::tokens::revoke(store, jti, now)?;
    }
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
    if crate::consents::withdrawn(store, &record.user_id, &record.client_id, record.granted_at)? {
        revoke_family(store, &record.family, now)?;
        return Err(invalid("the user withdrew this client's access"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[test]
    fn a_revoked_family_takes_no_more_access_tokens_and_revokes_all_it_had() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let store: &dyn Store = &store;
        let template = RefreshRecord {
            family: String::new(),
            client_id: "app".into(),
            user_id: "u".into(),
            scope: "openid".into(),
            jkt: None,
            expires_at: 2_000,
            used: false,
            granted_at: 1_000,
        };
        let first = start_family(store, &template, "at-1").unwrap();
        let rotated = continue_family(store, &first.family, &template, "at-2").unwrap();
        revoke_family(store, &first.family, 1_000).unwrap();
        for jti in ["at-1", "at-2"] {
            assert!(
                store.get(trees::REVOKED_TOKENS, jti).unwrap().is_some(),
                "{jti}"
            );
        }
        assert!(peek(store, &rotated, 1_000).unwrap().is_none());
        let refused = continue_family(store, &first.family, &template, "at-3").unwrap_err();
        assert!(matches!(
            refused,
            Error::OAuth {
                code: "invalid_grant",
                ..
            }
        ));
        let family: Family = store
            .get_json(trees::REFRESH_FAMILIES, &first.family)
            .unwrap()
            .unwrap();
        assert_eq!(family.access_jtis, ["at-1", "at-2"]);
        // A family that is gone has nothing to revoke.
        revoke_family(store, "no-such-family", 1_000).unwrap();
    }
}
