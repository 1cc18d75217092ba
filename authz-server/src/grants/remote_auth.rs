//! The remote verifier grant (an RFC 6749 §4.5 extension grant, one grant type per
//! `[[remote_auth]]` verifier, [`crate::remote_auth`]): a client allowed for the verifier
//! (its `remote_auth` list; public clients too — what the verifier checks, e.g. a one-time
//! server hash, is the proof) presents the verifier's parameters; the request's scope is
//! checked and the parameters validated first, then a failure token of the client and of the
//! address is reserved (`[rate_limits]`), and only then is the verifier asked. Its yes logs the
//! user in ([`super::identity_grant`]) and gives the reservation back; its no is
//! `invalid_grant`; no answer within `timeout_ms` (or an unusable one) is 503
//! `temporarily_unavailable`. Audited: `remote_auth.succeeded` and `remote_auth.refused`
//! (client, verifier, and the user or the reason — never a presented value).

use std::net::IpAddr;

use proto::clock::UnixTime;
use serde_json::json;

use super::TokenResponse;
use super::request::RemoteAuthRequest;
use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::oauth_clients::authentication::IdentifiedClient;
use crate::provider::Provider;
use crate::remote_auth::verifier::Answer;

impl Provider {
    /// A remote verifier's grant type: the user the verifier vouches for gets tokens.
    pub(super) async fn remote_auth_grant(
        &self,
        client: &IdentifiedClient,
        request: &RemoteAuthRequest,
        proof: Option<&FreshProof>,
        peer: IpAddr,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let verifier = self
            .remote_verifiers
            .by_grant_type(&request.grant_type)
            .ok_or_else(|| self.unsupported_grant_type())?;
        let client_id = &client.client.id;
        let refused = |reason: &str| {
            self.audit.record(
                now,
                "remote_auth.refused",
                json!({"client": client_id, "verifier": verifier.id(), "reason": reason}),
            );
        };
        if !client.client.may_use_remote_auth(verifier.id()) {
            refused("unauthorized_client");
            return Err(Error::unauthorized_client(format!(
                "the client {client_id} may not log users in through {}",
                verifier.config.name()
            )));
        }
        let scope = crate::scopes::grant(&request.scope, &client.client, self.device_scope())?;
        let resource = self.target(request.resource.clone())?;
        let presented = verifier.presented(&request.form)?;
        let reservation = self.limiters.reserve_remote_login(client_id, peer)?;
        let identity = match verifier.ask(&presented).await {
            Ok(Answer::Known(identity)) => identity,
            Ok(Answer::Unknown) => {
                refused("verifier_said_no");
                return Err(Error::invalid_grant(format!(
                    "{} does not confirm this login",
                    verifier.config.name()
                )));
            }
            Err(e) => {
                refused("verifier_unavailable");
                return Err(e);
            }
        };
        let user = match self.user_of_identity(&verifier.source(), &identity) {
            Ok(user) => user,
            Err(e) => {
                refused("no_account");
                return Err(e);
            }
        };
        reservation.refund();
        self.audit.record(
            now,
            "remote_auth.succeeded",
            json!({"client": client_id, "verifier": verifier.id(), "user": user.id}),
        );
        let grant = super::identity_grant::IdentityGrant {
            grant_type: "remote_auth",
            client: &client.client,
            user: &user,
            scope: &scope,
            resource,
        };
        self.issue_for_user(&grant, proof, now).await
    }
}
