//! The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636 S256 only): the code record
//! created at `/authorize` and redeemed once at `/token`. A second redemption fails and revokes
//! the whole grant the first one produced (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3): its access token,
//! and its refresh token family with every access token minted by refreshing. That holds also
//! when redemptions race: the one whose compare-and-swap marks the code redeemed wins, and each
//! other one, finding the code taken, revokes the winner's grant and its own unreturned tokens.
//! (The ID token is not a credential at this server and there are no login sessions to end; a
//! verifier that checks it offline accepts it until its `exp`, `lifetimes.id_token`.)

use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{Store, trees};

/// Values an OIDC `claims` request asked to see echoed in the ID token.
pub use proto::wire_claims::AcmeClaims as EchoedClaims;

/// Extracts the `keyauth` and `acme_aud` values an OIDC `claims` request asks for.
pub fn echoed_claims(raw: Option<&str>) -> std::result::Result<EchoedClaims, String> {
    EchoedClaims::from_claims_parameter(raw)
}

/// What `/authorize` granted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The client the code was issued to.
    pub client_id: String,
    /// The exact redirect URI used.
    pub redirect_uri: String,
    /// The user who logged in.
    pub user_id: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Granted scope.
    pub scope: String,
    /// OIDC `nonce`.
    pub nonce: Option<String>,
    /// Claims to echo.
    pub claims: EchoedClaims,
    /// `dpop_jkt` from the authorization request (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
    /// Login time (`auth_time`).
    pub auth_time: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Set once redeemed: the `jti`s of the access tokens it produced.
    pub redeemed: Option<Vec<String>>,
    /// Set once redeemed: the refresh token family it started.
    #[serde(default)]
    pub refresh_family: Option<String>,
}

fn code_key(code: &str) -> String {
    proto::b64::encode(Sha256::digest(code.as_bytes()))
}

/// Stores a grant and returns its code (256 bits). Only the code's hash is stored.
pub fn create(store: &dyn Store, grant: &CodeGrant) -> Result<String> {
    let code = proto::random::token(256);
    store.put_json(trees::CODES, &code_key(&code), grant)?;
    store.flush()?;
    Ok(code)
}

/// Checks a PKCE verifier against an S256 challenge (RFC 7636 §4.1, §4.6).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    proto::pkce::matches(verifier, challenge)
}

/// A grant whose code was redeemed by this request, and only this one.
#[derive(Debug)]
pub struct RedeemedGrant {
    /// The grant.
    pub grant: CodeGrant,
    key: String,
    stored: Vec<u8>,
}

/// Redeems a code: it must exist, be unexpired, unredeemed, issued to `client_id` for
/// `redirect_uri`, and the PKCE verifier must match. A code that was already redeemed revokes
/// what it issued.
pub fn redeem(
    store: &dyn Store,
    code: &str,
    client_id: &str,
    redirect_uri: &str,
    verifier: &str,
    now: UnixTime,
) -> Result<RedeemedGrant> {
    let key = code_key(code);
    let stored = store
        .get(trees::CODES, &key)?
        .ok_or_else(|| Error::invalid_grant("unknown authorization code"))?;
    let grant: CodeGrant = serde_json::from_slice(&stored)
        .map_err(|e| Error::Storage(format!("corrupt code: {e}")))?;
    if grant.redeemed.is_some() {
        return Err(replayed(store, &grant, client_id, now)?);
    }
    if grant.client_id != client_id {
        return Err(Error::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if now > grant.expires_at {
        return Err(Error::invalid_grant("the authorization code expired"));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(Error::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    if verifier.is_empty() {
        return Err(Error::invalid_request("code_verifier is required"));
    }
    if !pkce_matches(verifier, &grant.code_challenge) {
        return Err(Error::invalid_grant("PKCE verification failed"));
    }
    Ok(RedeemedGrant { grant, key, stored })
}

/// Revokes what a redeemed grant produced: its access tokens, and its refresh token family with
/// every access token issued in it. Durable on return.
fn revoke_issued(store: &dyn Store, grant: &CodeGrant, now: UnixTime) -> Result<()> {
    for jti in grant.redeemed.iter().flatten() {
        crate::tokens::revoke(store, jti, now)?;
    }
    if let Some(family) = &grant.refresh_family {
        crate::refresh::revoke_family(store, family, now)?;
    }
    Ok(store.flush()?)
}

/// A redeemed code presented again: revokes its grant and answers `invalid_grant`.
fn replayed(store: &dyn Store, grant: &CodeGrant, client_id: &str, now: UnixTime) -> Result<Error> {
    revoke_issued(store, grant, now)?;
    tracing::warn!(
        client_id,
        "authorization code reused; its grant was revoked"
    );
    Ok(Error::invalid_grant(
        "the authorization code was already used",
    ))
}

impl RedeemedGrant {
    /// Marks the code used, recording the access tokens and the refresh token family (if one
    /// was started) issued from it. If another request redeemed it meanwhile (the compare-and-swap on the stored
    /// record fails), this is a replay: what this request issued is revoked (it is never handed
    /// out), so is the other request's grant, and the answer is `invalid_grant`. Durable on
    /// return.
    pub fn commit(
        self,
        store: &dyn Store,
        issued_jtis: Vec<String>,
        refresh_family: Option<&str>,
        now: UnixTime,
    ) -> Result<()> {
        let mut grant = self.grant;
        grant.redeemed = Some(issued_jtis);
        grant.refresh_family = refresh_family.map(str::to_owned);
        let new = crate::store::encode(&grant)?;
        if store.compare_and_swap(trees::CODES, &self.key, Some(&self.stored), Some(&new))? {
            return Ok(store.flush()?);
        }
        revoke_issued(store, &grant, now)?;
        let winner = store
            .get_json::<CodeGrant>(trees::CODES, &self.key)?
            .filter(|g| g.redeemed.is_some());
        match winner {
            Some(winner) => Err(replayed(store, &winner, &grant.client_id, now)?),
            None => Err(Error::invalid_grant(
                "the authorization code was already used",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::{self, RefreshRecord};
    use crate::store::SledStore;

    /// Two redemptions that both read the code before either marked it: the one whose commit
    /// comes second is the replay, and nothing either of them issued stays usable. (Over HTTP
    /// this interleaving cannot be forced; `tests/code_replay.rs` races 100 real requests.)
    #[test]
    fn a_redemption_that_loses_the_race_revokes_both_grants() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let store: &dyn Store = &store;
        let pkce = proto::pkce::Pkce::new();
        let now = 1_000_000;
        let code = create(
            store,
            &CodeGrant {
                client_id: "app".into(),
                redirect_uri: "https://app.example/cb".into(),
                user_id: "u".into(),
                code_challenge: pkce.challenge.clone(),
                scope: "openid".into(),
                nonce: None,
                claims: EchoedClaims::default(),
                dpop_jkt: None,
                auth_time: now,
                expires_at: now + 60,
                redeemed: None,
                refresh_family: None,
            },
        )
        .unwrap();
        let redeem_now = || {
            redeem(
                store,
                &code,
                "app",
                "https://app.example/cb",
                &pkce.verifier,
                now,
            )
        };
        let (winner, loser) = (redeem_now().unwrap(), redeem_now().unwrap());
        let template = RefreshRecord {
            family: String::new(),
            client_id: "app".into(),
            user_id: "u".into(),
            scope: "openid".into(),
            jkt: None,
            expires_at: now + 3600,
            used: false,
            granted_at: now,
        };
        let first = refresh::start_family(store, &template, "jti-first").unwrap();
        let second = refresh::start_family(store, &template, "jti-second").unwrap();
        winner
            .commit(store, vec!["jti-first".into()], Some(&first.family), now)
            .unwrap();
        let refused = loser
            .commit(store, vec!["jti-second".into()], Some(&second.family), now)
            .unwrap_err();
        assert!(
            matches!(
                refused,
                Error::OAuth {
                    code: "invalid_grant",
                    ..
                }
            ),
            "{refused}"
        );
        for jti in ["jti-first", "jti-second"] {
            assert!(
                store.get(trees::REVOKED_TOKENS, jti).unwrap().is_some(),
                "{jti}"
            );
        }
        for issued in [&first, &second] {
            assert!(refresh::peek(store, &issued.token, now).unwrap().is_none());
        }
    }
}
