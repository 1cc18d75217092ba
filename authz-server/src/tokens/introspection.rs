//! What a token a client hands back is (RFC 7662 introspection) and its revocation (RFC 7009):
//! our RFC 9068 access tokens (revoked by `jti`) and our opaque refresh tokens (revoked with
//! their family).

use proto::clock::UnixTime;
use proto::jws::{Claims, UnverifiedJws};

use crate::error::Result;
use crate::provider::Provider;
use crate::store::refresh_tokens::RefreshRecord;
use crate::store::{self, Store};

/// What a presented token is.
#[derive(Debug)]
pub enum Introspection {
    /// One of our access tokens, active: its claims.
    AccessToken(Claims),
    /// One of our refresh tokens that can still be exchanged.
    RefreshToken(RefreshRecord),
    /// Anything else: unknown, expired, used or revoked.
    Inactive,
}

impl Provider {
    /// The claims of one of our access tokens that is still active: signed by one of our
    /// keys, ours (`iss`), unexpired, not revoked, and not of a grant the user withdrew.
    fn active_access_token(&self, token: &str, now: UnixTime) -> Result<Option<Claims>> {
        let Ok(jws) = UnverifiedJws::from_compact(token) else {
            return Ok(None);
        };
        if jws.header().typ() != Some("at+jwt") {
            return Ok(None);
        }
        let Some(kid) = jws.header().kid() else {
            return Ok(None);
        };
        let keys = self.verification_keys();
        let Some(key) = keys.iter().find(|k| k.kid.as_deref() == Some(kid)) else {
            return Ok(None);
        };
        let Ok(claims) = jws.verify(key).and_then(|v| v.claims()) else {
            return Ok(None);
        };
        let live = claims.string("iss").ok() == Some(self.base_url.as_str())
            && claims.int("exp").is_ok_and(|exp| exp >= now);
        let revoked = match claims.string("jti") {
            Ok(jti) => store::revocations::is_revoked(self.store(), jti)?,
            Err(_) => true,
        };
        let withdrawn = match (
            claims.string("sub"),
            claims.string("client_id"),
            claims.int("iat"),
        ) {
            (Ok(sub), Ok(client_id), Ok(iat)) => {
                crate::consents::withdrawn(self.store(), sub, client_id, iat)?
            }
            _ => true,
        };
        Ok((live && !revoked && !withdrawn).then_some(claims))
    }

    /// What `token` is (a refresh token of a grant the user withdrew is inactive: the refresh
    /// grant refuses it).
    pub fn introspect(&self, token: &str, now: UnixTime) -> Result<Introspection> {
        if let Some(claims) = self.active_access_token(token, now)? {
            return Ok(Introspection::AccessToken(claims));
        }
        let store = self.store();
        Ok(match store::refresh_tokens::peek(store, token, now)? {
            Some(record)
                if !crate::consents::withdrawn(
                    store,
                    &record.user_id,
                    &record.client_id,
                    record.granted_at,
                )? =>
            {
                Introspection::RefreshToken(record)
            }
            _ => Introspection::Inactive,
        })
    }

    /// Revokes `token` if it is one of `client_id`'s: an active access token by its `jti`, a
    /// refresh token with its family. Anything else is left alone. Durable on return.
    pub fn revoke_token(&self, client_id: &str, token: &str, now: UnixTime) -> Result<()> {
        let store = self.store();
        if let Some(claims) = self.active_access_token(token, now)? {
            if claims.string("client_id").ok() == Some(client_id)
                && let Ok(jti) = claims.string("jti")
            {
                store::revocations::revoke(store, jti, now)?;
                store::flush(store)?;
            }
            return Ok(());
        }
        revoke_refresh_token(store, token, client_id, now)
    }
}

/// Revokes the family of a refresh token of `client_id` (RFC 7009); nothing if it is not one.
/// Durable on return.
fn revoke_refresh_token(
    store: &dyn Store,
    token: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<()> {
    match store::refresh_tokens::get(store, token)? {
        Some(stored) if stored.value().client_id == client_id => {
            store::refresh_tokens::revoke_family(store, &stored.value().family, now)?;
            store::flush(store)
        }
        _ => Ok(()),
    }
}
