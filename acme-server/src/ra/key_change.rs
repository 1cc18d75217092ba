//! Account key rollover (RFC 8555 §7.3.5): the outer JWS is signed by the current key (checked
//! by the front end); the inner JWS, signed by the new key and carrying it as `jwk`, has the
//! same `url`, and its payload names this account and its current key. A key that another
//! account already uses is a 409 naming that account: the new key is claimed in the key index
//! (the first claim wins) before the account moves to it, and released again if the account
//! cannot.

use proto::acme_jws::{AcmeRequest, RequestKey};
use proto::jwk::Jwk;
use serde::Deserialize;

use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::error::{Error, Result, jws_problem};
use crate::model::{AccountRecord, account_key};
use crate::sa::Decision;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: serde_json::Value,
}

impl RegistrationAuthority {
    /// Rolls `account` (whose URL is `kid`) over to the key of the inner JWS `inner`; `url` is
    /// the keyChange URL the outer JWS was signed for; `account_url` maps an id to its URL.
    pub fn change_key(
        &self,
        account: &AuthenticatedAccount,
        kid: &str,
        url: &str,
        inner: &[u8],
        account_url: impl Fn(&str) -> String,
    ) -> Result<AccountRecord> {
        let refuse = |e: proto::Error| Error::problem(jws_problem(&e), format!("inner JWS: {e}"));
        let inner = AcmeRequest::parse_key_change_inner(inner).map_err(refuse)?;
        if inner.url() != url {
            return Err(Error::malformed(
                "the inner JWS url differs from the outer one",
            ));
        }
        let RequestKey::Jwk(new_key) = inner.key().clone() else {
            return Err(Error::malformed(
                "the inner JWS must carry the new key as jwk",
            ));
        };
        let verified = inner.verify(&new_key).map_err(refuse)?;
        let payload: KeyChangePayload = serde_json::from_slice(verified.payload())
            .map_err(|e| Error::malformed(format!("keyChange payload: {e}")))?;
        if payload.account != kid {
            return Err(Error::malformed(
                "the keyChange payload names another account",
            ));
        }
        let old_key = Jwk::from_json(&payload.old_key)
            .map_err(|e| Error::malformed(format!("oldKey: {e}")))?;
        let not_current = || Error::malformed("oldKey is not the account's current key");
        if !old_key.same_key(account.key()) {
            return Err(not_current());
        }
        if new_key.same_key(account.key()) {
            return Err(Error::malformed("the new key is the current key"));
        }
        let thumbprint = new_key.thumbprint();
        let conflict = |id: String| Error::Conflict {
            detail: "the new key belongs to another account".into(),
            location: account_url(&id),
        };
        let reader = self.sa.reader();
        if let Some(owner) = reader.account_id_by_thumbprint(&thumbprint)? {
            return Err(conflict(owner));
        }
        if !self.sa.claim_account_key(&thumbprint, account.id())? {
            let owner = reader.account_id_by_thumbprint(&thumbprint)?;
            return Err(conflict(owner.unwrap_or_default()));
        }
        let moved = self
            .sa
            .transition(account.id(), |stored: Option<&AccountRecord>| {
                let current = stored.ok_or_else(|| Error::NotFound("account".into()))?;
                // Another key change may have won since the request was signed.
                if !current.jwk.same_key(account.key()) {
                    return Err(not_current());
                }
                let moved = AccountRecord {
                    jwk: account_key(&new_key),
                    thumbprint: thumbprint.clone(),
                    ..current.clone()
                };
                Ok(Decision::Write(moved.clone(), moved))
            });
        let (released, result) = match moved {
            Ok(moved) => (account.record().thumbprint.as_str(), Ok(moved)),
            Err(e) => (thumbprint.as_str(), Err(e)),
        };
        self.sa.release_account_key(released, account.id())?;
        result
    }
}
