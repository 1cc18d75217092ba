//! The authorization code grant with PKCE (RFC 6749 §4.1.3, RFC 7636 S256 only): the code
//! `/authorize` issued ([`crate::authorization`]) is redeemed once. A second redemption fails
//! and revokes the whole grant the first one produced (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3): its
//! access token, and its refresh token family with every access token minted by refreshing.
//! That holds also when redemptions race: the one whose compare-and-swap marks the code
//! redeemed wins, and each other one, finding the code taken, revokes the winner's grant and
//! its own unreturned tokens. (The ID token is not a credential at this server and there are
//! no login sessions to end; a verifier that checks it offline accepts it until its `exp`,
//! `lifetimes.id_token`.)

use proto::clock::UnixTime;
use proto::secret::SecretString;

use super::{TokenResponse, check_binding};
use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::oauth_clients::authentication::IdentifiedClient;
use crate::provider::Provider;
use crate::store::codes::{CodeGrant, StoredCode};
use crate::store::{self, Store};
use crate::tokens::id_token::IdTokenGrant;

/// The code and what must match it, as the token request presented them.
#[derive(Debug)]
pub(super) struct PresentedCode<'a> {
    /// `code`.
    pub code: &'a SecretString,
    /// `redirect_uri`.
    pub redirect_uri: &'a str,
    /// `code_verifier`.
    pub verifier: Option<&'a SecretString>,
}

/// A code this request redeemed, and only this one, until [`Self::commit`] records it.
#[derive(Debug)]
struct RedeemedCode {
    stored: StoredCode,
}

impl RedeemedCode {
    fn grant(&self) -> &CodeGrant {
        self.stored.value()
    }
}

/// Redeems a code: it must exist, be unexpired, unredeemed, issued to `client_id` for the
/// same `redirect_uri`, and the PKCE verifier must match. A code that was already redeemed
/// revokes what it issued.
fn redeem(
    store: &dyn Store,
    presented: &PresentedCode<'_>,
    client_id: &str,
    now: UnixTime,
) -> Result<RedeemedCode> {
    let stored = store::codes::get(store, presented.code.expose())?
        .ok_or_else(|| Error::invalid_grant("unknown authorization code"))?;
    let grant = stored.value();
    if grant.redeemed.is_some() {
        return Err(replayed(store, grant, client_id, now)?);
    }
    if grant.client_id != client_id {
        return Err(Error::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if now > grant.expires_at {
        return Err(Error::invalid_grant("the authorization code expired"));
    }
    if grant.redirect_uri != presented.redirect_uri {
        return Err(Error::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    let verifier = presented
        .verifier
        .ok_or_else(|| Error::invalid_request("code_verifier is required"))?;
    if !proto::pkce::matches(verifier.expose(), &grant.code_challenge) {
        return Err(Error::invalid_grant("PKCE verification failed"));
    }
    Ok(RedeemedCode { stored })
}

/// Revokes what a redeemed grant produced: its access tokens, and its refresh token family with
/// every access token issued in it. Durable on return.
fn revoke_issued(store: &dyn Store, grant: &CodeGrant, now: UnixTime) -> Result<()> {
    for jti in grant.redeemed.iter().flatten() {
        store::revocations::revoke(store, jti, now)?;
    }
    if let Some(family) = &grant.refresh_family {
        store::refresh_tokens::revoke_family(store, family, now)?;
    }
    store::flush(store)
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

impl RedeemedCode {
    /// Marks the code used, recording the access tokens and the refresh token family (if one
    /// was started) issued from it. If another request redeemed it meanwhile (the
    /// compare-and-swap on the stored record fails), this is a replay: what this request issued
    /// is revoked (it is never handed out), so is the other request's grant, and the answer is
    /// `invalid_grant`. Durable on return.
    fn commit(
        self,
        store: &dyn Store,
        issued_jtis: Vec<String>,
        refresh_family: Option<&str>,
        now: UnixTime,
    ) -> Result<()> {
        let mut grant = self.grant().clone();
        grant.redeemed = Some(issued_jtis);
        grant.refresh_family = refresh_family.map(str::to_owned);
        if store::replace(store, &self.stored, &grant)? {
            return store::flush(store);
        }
        revoke_issued(store, &grant, now)?;
        let winner = store::reread(store, &self.stored)?
            .map(|current| current.value().clone())
            .filter(|g| g.redeemed.is_some());
        match winner {
            Some(winner) => Err(replayed(store, &winner, &grant.client_id, now)?),
            None => Err(Error::invalid_grant(
                "the authorization code was already used",
            )),
        }
    }
}

impl Provider {
    /// `authorization_code`: the code's grant, for the key of `dpop_jkt` if the authorization
    /// request named one, to the user it was issued for, for `resource` if the request named
    /// one. The permission sources are asked after every check of the code and before it is
    /// marked redeemed.
    pub(super) async fn exchange_code(
        &self,
        client: &IdentifiedClient,
        presented: &PresentedCode<'_>,
        resource: Option<String>,
        proof: Option<&FreshProof>,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let store = self.store();
        let client_id = client.client.id.as_str();
        let redeemed = redeem(store, presented, client_id, now)?;
        let grant = redeemed.grant().clone();
        check_binding(grant.dpop_jkt.as_deref(), proof)?;
        let user = crate::identity::user_of_grant(store, &grant.user_id)?;
        let resource = self.target(resource)?;
        let sourced = self
            .sourced_claims(&user, client_id, &grant.scope, resource.as_deref(), now)
            .await?;
        let id_token = crate::scopes::has(&grant.scope, "openid").then_some(IdTokenGrant {
            client_id: &grant.client_id,
            scope: &grant.scope,
            nonce: grant.nonce.as_deref(),
            auth_time: Some(grant.auth_time),
            amr: &grant.amr,
            sid: grant.sid.as_deref(),
            echoed: &grant.claims,
        });
        let mut user_grant =
            self.new_user_grant(&client.client, &user, &grant.scope, proof, id_token, now);
        user_grant.template.resource = resource;
        user_grant.sourced = sourced;
        let tokens = self.issue_user_tokens(&user_grant, now)?;
        let jti = tokens.access_jti.clone();
        let family = tokens.family.clone();
        redeemed.commit(store, vec![jti], family.as_deref(), now)?;
        tracing::info!(client_id, user = %user.id, dpop = proof.is_some(), "tokens issued");
        Ok(self.issued("authorization_code", &user_grant, tokens, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorization::create_code;
    use crate::grants::user_tokens::new_family;
    use crate::identity::claims::EchoedClaims;
    use crate::store::refresh_tokens;

    /// Two redemptions that both read the code before either marked it: the one whose commit
    /// comes second is the replay, and nothing either of them issued stays usable. (Over HTTP
    /// this interleaving cannot be forced; `tests/code_replay.rs` races 100 real requests.)
    #[test]
    fn a_redemption_that_loses_the_race_revokes_both_grants() {
        let (_dir, store) = store::temporary();
        let store: &dyn Store = &store;
        let pkce = proto::pkce::Pkce::new();
        let now = 1_000_000;
        let code = create_code(
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
                amr: Vec::new(),
                sid: None,
                expires_at: now + 60,
                redeemed: None,
                refresh_family: None,
            },
        )
        .unwrap();
        let (code, verifier) = (SecretString::new(code), SecretString::new(&pkce.verifier));
        let presented = PresentedCode {
            code: &code,
            redirect_uri: "https://app.example/cb",
            verifier: Some(&verifier),
        };
        let redeem_now = || redeem(store, &presented, "app", now);
        let (winner, loser) = (redeem_now().unwrap(), redeem_now().unwrap());
        let template = new_family("app", "u", "openid", None, 3600, now);
        let first = refresh_tokens::start_family(store, &template, "jti-first").unwrap();
        let second = refresh_tokens::start_family(store, &template, "jti-second").unwrap();
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
            assert!(store::revocations::is_revoked(store, jti).unwrap(), "{jti}");
        }
        for issued in [&first, &second] {
            assert!(
                refresh_tokens::peek(store, &issued.token, now)
                    .unwrap()
                    .is_none()
            );
        }
    }
}
