//! The refresh token grant (RFC 6749 §6, OAuth 2.1 §4.3): a refresh token is used once and
//! rotated; presenting one that was already used revokes its whole family and the access
//! tokens it produced (reuse detection, RFC 9700 §4.14), and so does a consent the user
//! withdrew since the family was granted. A family issued to a DPoP proof is bound to that key
//! (`jkt`), checked before the token is used, so a stolen token presented with another key
//! cannot burn (and, by reuse detection, revoke) the holder's family.

use proto::clock::UnixTime;
use proto::secret::SecretString;

use super::user_tokens::{RefreshIssue, UserGrant};
use super::{TokenResponse, check_binding};
use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::oauth_clients::authentication::IdentifiedClient;
use crate::provider::Provider;
use crate::store::refresh_tokens::{NoRotation, RefreshRecord};
use crate::store::{self, Store};

/// Uses a refresh token of `client_id`: it becomes used, and its record is returned; reuse
/// revokes the family.
fn redeem(store: &dyn Store, token: &str, client_id: &str, now: UnixTime) -> Result<RefreshRecord> {
    let invalid = |d: &str| Error::invalid_grant(d.to_owned());
    let stored = store::refresh_tokens::get(store, token)?
        .ok_or_else(|| invalid("unknown refresh token"))?;
    let record = stored.value().clone();
    if record.client_id != client_id {
        return Err(invalid("the refresh token was issued to another client"));
    }
    if store::refresh_tokens::family(store, &record.family)?.revoked {
        return Err(invalid("the refresh token was revoked"));
    }
    if crate::consents::withdrawn(store, &record.user_id, &record.client_id, record.granted_at)? {
        revoke_family(store, &record.family, now)?;
        return Err(invalid("the user withdrew this client's access"));
    }
    if record.expires_at < now {
        return Err(invalid("the refresh token expired"));
    }
    if record.used || !store::refresh_tokens::mark_used(store, &stored)? {
        revoke_family(store, &record.family, now)?;
        tracing::warn!(client_id, "refresh token reuse; family revoked");
        return Err(invalid(
            "the refresh token was already used; its family is revoked",
        ));
    }
    Ok(record)
}

/// Stores the next refresh token of `family` with the access token `access_jti`:
/// `invalid_grant` when the family is gone or was revoked meanwhile.
pub(super) fn rotate(
    store: &dyn Store,
    family: &str,
    template: &RefreshRecord,
    access_jti: &str,
) -> Result<String> {
    store::refresh_tokens::continue_family(store, family, template, access_jti)?.map_err(
        |refused| match refused {
            NoRotation::Revoked => Error::invalid_grant("the refresh token was revoked"),
            NoRotation::Gone => Error::invalid_grant("the refresh token family is gone"),
        },
    )
}

/// Revokes a family with every access token issued in it. Durable on return.
fn revoke_family(store: &dyn Store, family: &str, now: UnixTime) -> Result<()> {
    store::refresh_tokens::revoke_family(store, family, now)?;
    store::flush(store)
}

/// What a refresh issues, worked out from the refresh token's record before it is used.
struct Prepared {
    /// The user.
    user: crate::store::users::User,
    /// The resource asked for (the request's, else the family's).
    resource: Option<String>,
    /// The family's scope without what the user withheld from the client since (a later
    /// consent answer): RFC 6749 §6 lets the refreshed scope be narrower.
    scope: String,
    /// The permission sources' claims.
    sourced: serde_json::Map<String, serde_json::Value>,
}

impl Provider {
    /// The user, resource, scope and sourced claims a refresh of `record` by `client_id` issues
    /// for, with `resource` the request's.
    async fn prepare_refresh(
        &self,
        client_id: &str,
        record: &RefreshRecord,
        resource: &Option<String>,
        now: UnixTime,
    ) -> Result<Prepared> {
        let store = self.store();
        let user = crate::identity::user_of_grant(store, &record.user_id)?;
        let resource = self.target(resource.clone().or_else(|| record.resource.clone()))?;
        let scope = crate::consents::released(store, &record.user_id, client_id, &record.scope)?;
        let sourced = self
            .sourced_claims(&user, client_id, &scope, resource.as_deref(), now)
            .await?;
        Ok(Prepared {
            user,
            resource,
            scope,
            sourced,
        })
    }

    /// `refresh_token`: the next token of the family, with an access token for the same user,
    /// client and scope, bound to the family's key (or, for an unbound family, to the
    /// request's proof), for `resource` if named (else the family's last resource), with the
    /// permission sources asked again — before the token is used, so a source that fails
    /// closed leaves it usable for a retry.
    pub(super) async fn exchange_refresh_token(
        &self,
        client: &IdentifiedClient,
        token: &SecretString,
        resource: Option<String>,
        proof: Option<&FreshProof>,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let store = self.store();
        let client_id = client.client.id.as_str();
        let peeked = store::refresh_tokens::peek(store, token.expose(), now)?;
        if let Some(record) = &peeked {
            check_binding(record.jkt.as_deref(), proof)?;
        }
        let prepared = match peeked.filter(|r| r.client_id == client_id) {
            Some(record) => Some(
                self.prepare_refresh(client_id, &record, &resource, now)
                    .await?,
            ),
            None => None,
        };
        let record = redeem(store, token.expose(), client_id, now)?;
        let Prepared {
            user,
            resource,
            scope,
            sourced,
        } = match prepared.filter(|p| p.user.id == record.user_id) {
            Some(prepared) => prepared,
            None => {
                self.prepare_refresh(client_id, &record, &resource, now)
                    .await?
            }
        };
        if !crate::scopes::refresh_token_allowed(&client.client, &scope) {
            return Err(Error::invalid_grant(
                "the user no longer allows this client offline access",
            ));
        }
        let jkt = record
            .jkt
            .clone()
            .or_else(|| proof.map(|p| p.thumbprint().to_owned()));
        let family = record.family.clone();
        let grant = UserGrant {
            user: &user,
            template: RefreshRecord {
                jkt,
                resource,
                scope,
                ..record
            },
            refresh: RefreshIssue::Rotate(&family),
            id_token: None,
            sourced,
        };
        let tokens = self.issue_user_tokens(&grant, now)?;
        store::flush(store)?;
        Ok(self.issued("refresh_token", &grant, tokens, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::user_tokens::new_family;
    use crate::store::refresh_tokens::{peek, start_family};

    #[test]
    fn a_revoked_family_takes_no_more_access_tokens_and_revokes_all_it_had() {
        let (_dir, store) = store::temporary();
        let store: &dyn Store = &store;
        let template = new_family("app", "u", "openid", None, 1_000, 1_000);
        let first = start_family(store, &template, "at-1").unwrap();
        let rotated = rotate(store, &first.family, &template, "at-2").unwrap();
        revoke_family(store, &first.family, 1_000).unwrap();
        for jti in ["at-1", "at-2"] {
            assert!(store::revocations::is_revoked(store, jti).unwrap(), "{jti}");
        }
        assert!(peek(store, &rotated, 1_000).unwrap().is_none());
        // The rotated token was never used, but its family is revoked.
        let refused = redeem(store, &rotated, "app", 1_000).unwrap_err();
        assert!(matches!(
            refused,
            Error::OAuth {
                code: "invalid_grant",
                ..
            }
        ));
        let refused = rotate(store, &first.family, &template, "at-3").unwrap_err();
        assert!(matches!(
            refused,
            Error::OAuth {
                code: "invalid_grant",
                ..
            }
        ));
        assert_eq!(
            store::refresh_tokens::family(store, &first.family)
                .unwrap()
                .access_jtis,
            ["at-1", "at-2"]
        );
        // A family that is gone has nothing to revoke.
        revoke_family(store, "no-such-family", 1_000).unwrap();
    }
}
