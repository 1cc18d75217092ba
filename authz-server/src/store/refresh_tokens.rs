//! Refresh tokens (`refresh_tokens`, by the token's digest) and their families
//! (`refresh_families`): every token descends from one family, which records the access tokens
//! issued in it and whether it was revoked.
//!
//! The family record changes only by compare-and-swap: a rotation adds its access token to the
//! family unless the family is revoked, and a revocation revokes exactly the access tokens of
//! the family it marked revoked, so a rotation racing a revocation either is revoked with the
//! family or refused.

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Store, StoredRecord, trees};
use crate::error::{Error, Result};

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
    /// The RFC 8707 resource its access tokens were last issued for (their audience), if any:
    /// what a refresh naming no resource asks for again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
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

/// A refresh token just issued and the family it belongs to.
#[derive(Debug)]
pub struct Issued {
    /// The refresh token.
    pub token: String,
    /// Its family.
    pub family: String,
}

/// Why a family takes no further refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRotation {
    /// The family was revoked (meanwhile); nothing was stored.
    Revoked,
    /// There is no such family (expired and swept); nothing was stored.
    Gone,
}

/// Starts a new family for `template` whose first access token is `access_jti`, and stores
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

/// Adds the access token `access_jti` to `family` unless it was revoked, and stores the
/// family's next refresh token for `template`: the token, or why there is none.
pub fn continue_family(
    store: &dyn Store,
    family: &str,
    template: &RefreshRecord,
    access_jti: &str,
) -> Result<std::result::Result<String, NoRotation>> {
    let mut revoked = false;
    let updated = update_family(store, family, |fam| {
        revoked = fam.revoked;
        if !fam.revoked {
            fam.access_jtis.push(access_jti.to_owned());
            fam.expires_at = fam.expires_at.max(Some(template.expires_at));
        }
        !fam.revoked
    })?;
    match updated {
        None if revoked => Ok(Err(NoRotation::Revoked)),
        None => Ok(Err(NoRotation::Gone)),
        Some(_) => Ok(Ok(store_token(store, family, template)?)),
    }
}

fn store_token(store: &dyn Store, family: &str, template: &RefreshRecord) -> Result<String> {
    let token = proto::random::token(256);
    let record = RefreshRecord {
        family: family.to_owned(),
        used: false,
        ..template.clone()
    };
    store.put_json(trees::REFRESH_TOKENS, &super::digest(&token), &record)?;
    Ok(token)
}

/// Changes a family record by compare-and-swap, retrying on a concurrent change, as long as
/// `change` says the change applies; returns the record written, or `None` when there is no
/// such family or the change does not apply.
fn update_family(
    store: &dyn Store,
    family: &str,
    mut change: impl FnMut(&mut Family) -> bool,
) -> Result<Option<Family>> {
    loop {
        let Some(stored) = store.get_versioned::<Family>(trees::REFRESH_FAMILIES, family)? else {
            return Ok(None);
        };
        let mut next = stored.value.clone();
        if !change(&mut next) {
            return Ok(None);
        }
        if store.replace_json(trees::REFRESH_FAMILIES, family, &stored, &next)? {
            return Ok(Some(next));
        }
    }
}

/// The family record (an empty, unrevoked one when it is gone).
pub fn family(store: &dyn Store, family: &str) -> Result<Family> {
    Ok(store
        .get_json(trees::REFRESH_FAMILIES, family)?
        .unwrap_or_default())
}

/// Revokes a family and every access token issued in it; a family that is gone (expired and
/// swept, with its refresh tokens) has nothing left to revoke.
pub fn revoke_family(store: &dyn Store, family: &str, now: UnixTime) -> Result<()> {
    let revoked = update_family(store, family, |fam| {
        fam.revoked = true;
        true
    })?;
    for jti in revoked.iter().flat_map(|f| &f.access_jtis) {
        super::revocations::revoke(store, jti, now)?;
    }
    Ok(())
}

/// A refresh token's record as read, for the compare-and-swap that uses it.
pub type StoredRefreshToken = StoredRecord<RefreshRecord>;

/// The record of a refresh token, whatever its state.
pub fn get(store: &dyn Store, token: &str) -> Result<Option<StoredRefreshToken>> {
    super::read(store, trees::REFRESH_TOKENS, super::digest(token))
}

/// Marks a token used unless it changed since it was read; false when another request used
/// it first.
pub fn mark_used(store: &dyn Store, read: &StoredRefreshToken) -> Result<bool> {
    let used = RefreshRecord {
        used: true,
        ..read.value().clone()
    };
    super::replace(store, read, &used)
}

/// A refresh token that can still be exchanged: unused, its family not revoked, unexpired.
pub fn peek(store: &dyn Store, token: &str, now: UnixTime) -> Result<Option<RefreshRecord>> {
    let Some(record) =
        store.get_json::<RefreshRecord>(trees::REFRESH_TOKENS, &super::digest(token))?
    else {
        return Ok(None);
    };
    let family = family(store, &record.family)?;
    Ok((!record.used && !family.revoked && record.expires_at >= now).then_some(record))
}
