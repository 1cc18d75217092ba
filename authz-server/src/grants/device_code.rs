//! The device code grant (RFC 8628 §3.4, §3.5): the device polls with its device code and gets
//! `authorization_pending` while the user has not decided, `slow_down` (and a longer interval)
//! when it polls faster than its interval, `expired_token` or `access_denied`, and the user's
//! tokens once, after approval. The device flow has no authorization request, so its ID token
//! has no `nonce` and echoes nothing.

use proto::clock::UnixTime;
use proto::secret::SecretString;

use super::TokenResponse;
use crate::device_grant::INTERVAL;
use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::identity::claims::EchoedClaims;
use crate::oauth_clients::authentication::IdentifiedClient;
use crate::provider::Provider;
use crate::store::device_codes::{Decision, DeviceGrant};
use crate::store::{self, Store};
use crate::tokens::id_token::IdTokenGrant;

fn poll_error(code: &'static str, description: &str) -> Error {
    Error::OAuth {
        code,
        description: description.into(),
    }
}

/// A poll of the token endpoint: the approved authorization (consumed), or the RFC 8628 §3.5
/// error.
fn poll(
    store: &dyn Store,
    device_code: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<DeviceGrant> {
    let stored = store::device_codes::get(store, device_code)?
        .ok_or_else(|| Error::invalid_grant("unknown device code"))?;
    let grant = stored.value().clone();
    if grant.client_id != client_id {
        return Err(Error::invalid_grant(
            "the device code was issued to another client",
        ));
    }
    if grant.expires_at < now {
        return Err(poll_error("expired_token", "the device code expired"));
    }
    match &grant.decision {
        Decision::Denied => Err(poll_error("access_denied", "the user denied the request")),
        Decision::Approved { .. } => {
            if !store::device_codes::remove(store, &stored)? {
                return Err(Error::invalid_grant("the device code was already used"));
            }
            Ok(grant)
        }
        Decision::Pending => {
            let too_fast = grant.last_poll.is_some_and(|t| now - t < grant.interval);
            let mut next = grant.clone();
            next.last_poll = Some(now);
            if too_fast {
                next.interval += INTERVAL;
            }
            store::replace(store, &stored, &next)?;
            if too_fast {
                Err(poll_error("slow_down", "poll less often"))
            } else {
                Err(poll_error(
                    "authorization_pending",
                    "the user has not decided yet",
                ))
            }
        }
    }
}

/// The user and scope of a device code `client_id` may redeem now (approved, unexpired), read
/// without consuming it.
fn approved(
    store: &dyn Store,
    device_code: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<Option<(crate::store::users::User, String)>> {
    let Some(stored) = store::device_codes::get(store, device_code)? else {
        return Ok(None);
    };
    let grant = stored.value();
    let Decision::Approved { user_id, .. } = &grant.decision else {
        return Ok(None);
    };
    if grant.client_id != client_id || grant.expires_at < now {
        return Ok(None);
    }
    let user = crate::identity::user_of_grant(store, user_id)?;
    Ok(Some((user, grant.scope.clone())))
}

impl Provider {
    /// `urn:ietf:params:oauth:grant-type:device_code`: once the user approved, tokens for the
    /// user (for `resource` if the request named one), bound to the request's proof if it had
    /// one. The permission sources are asked before the approved code is consumed.
    pub(super) async fn exchange_device_code(
        &self,
        client: &IdentifiedClient,
        device_code: &SecretString,
        resource: Option<String>,
        proof: Option<&FreshProof>,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let store = self.store();
        let resource = self.target(resource)?;
        let prepared = match approved(store, device_code.expose(), &client.client.id, now)? {
            Some((user, scope)) => {
                let sourced = self
                    .sourced_claims(&user, &client.client.id, &scope, resource.as_deref(), now)
                    .await?;
                Some((user, sourced))
            }
            None => None,
        };
        let grant = poll(store, device_code.expose(), &client.client.id, now)?;
        let Decision::Approved {
            user_id,
            auth_time,
            amr,
        } = &grant.decision
        else {
            return Err(Error::Internal(
                "a polled grant that is not approved".into(),
            ));
        };
        let (user, sourced) = match prepared.filter(|(user, _)| user.id == *user_id) {
            Some((user, sourced)) => (user, Some(sourced)),
            None => (crate::identity::user_of_grant(store, user_id)?, None),
        };
        let no_echo = EchoedClaims::default();
        let id_token = crate::scopes::has(&grant.scope, "openid").then_some(IdTokenGrant {
            client_id: &grant.client_id,
            scope: &grant.scope,
            nonce: None,
            auth_time: *auth_time,
            amr,
            sid: None,
            echoed: &no_echo,
        });
        let mut user_grant =
            self.new_user_grant(&client.client, &user, &grant.scope, proof, id_token, now);
        user_grant.template.resource = resource;
        user_grant.sourced = match sourced {
            Some(sourced) => sourced,
            None => {
                self.sourced_claims(
                    &user,
                    &client.client.id,
                    &grant.scope,
                    user_grant.template.resource.as_deref(),
                    now,
                )
                .await?
            }
        };
        let tokens = self.issue_user_tokens(&user_grant, now)?;
        store::flush(store)?;
        Ok(self.issued("device_code", &user_grant, tokens, now))
    }
}
