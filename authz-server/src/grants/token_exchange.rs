//! RFC 8693 token exchange for upstream tokens: a confidential client allowed for an upstream
//! (its `token_exchange` list) presents one of our access tokens as the `subject_token` and
//! names the upstream by `audience` (its id) or `resource` (its issuer or id); it gets the
//! access token that upstream issued to the token's user, kept since the user's last login
//! through it ([`crate::federation::kept_tokens`], refreshed there first when about to
//! expire). The subject token is checked as a resource server checks ours — signature, issuer,
//! expiry, revocation, a withdrawn consent, a user still there — and a DPoP-bound one only
//! with a proof of its key on this request. The answer is the upstream's token as it is
//! (`Bearer`), never a refresh token.

use proto::clock::UnixTime;
use proto::secret::SecretString;
use serde_json::json;

use super::TokenResponse;
use super::request::{ACCESS_TOKEN_TYPE, TokenExchangeRequest};
use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::oauth_clients::authentication::IdentifiedClient;
use crate::provider::Provider;
use crate::store::users::User;
use crate::tokens::resource::{PresentedToken, ProofUse};

impl Provider {
    /// `token-exchange`: the upstream access token of the subject token's user.
    pub(super) async fn exchange_for_upstream_token(
        &self,
        client: &IdentifiedClient,
        request: &TokenExchangeRequest,
        proof: Option<&FreshProof>,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let unauthorized = |description: String| Error::OAuth {
            code: "unauthorized_client",
            description,
        };
        if !client.authenticated {
            return Err(unauthorized(
                "token exchange is for confidential clients".into(),
            ));
        }
        let upstream = self
            .upstreams
            .by_id_or_issuer(&request.target)
            .ok_or_else(|| Error::OAuth {
                code: "invalid_target",
                description: format!("no upstream {:?} is configured here", request.target),
            })?;
        let client_id = &client.client.id;
        if !client.client.may_exchange_for(upstream.id()) {
            return Err(unauthorized(format!(
                "the client {client_id} may not exchange tokens for {}'s",
                upstream.config.display_name
            )));
        }
        let user = self.subject_user(&request.subject_token, proof, now)?;
        let token = self.upstream_access_token(&upstream, &user.id, now).await?;
        self.audit.record(
            now,
            "token.exchanged",
            json!({"client": client_id, "user": user.id, "upstream": upstream.id()}),
        );
        Ok(TokenResponse {
            access_token: token.access_token,
            dpop_bound: false,
            expires_in: token.expires_in,
            scope: token.scope,
            refresh_token: None,
            id_token: None,
            issued_token_type: Some(ACCESS_TOKEN_TYPE),
        })
    }

    /// The user of a subject token that is one of our live access tokens, presented with a
    /// proof of its key when it is DPoP-bound; `invalid_grant` otherwise.
    fn subject_user(
        &self,
        subject_token: &SecretString,
        proof: Option<&FreshProof>,
        now: UnixTime,
    ) -> Result<User> {
        let refused =
            |why: &str| Error::invalid_grant(format!("the subject token is not acceptable: {why}"));
        let as_grant_error = |e: Error| match e {
            Error::InvalidToken { description, .. } => refused(&description),
            other => other,
        };
        let authorization = format!("Bearer {}", subject_token.expose());
        let presented = PresentedToken {
            authorization: Some(&authorization),
            dpop: &[],
        };
        let token = self
            .authenticate_token(presented, ProofUse::Exchanged, now)
            .map_err(as_grant_error)?;
        if let Some(jkt) = &token.jkt
            && proof.is_none_or(|p| p.thumbprint() != jkt)
        {
            return Err(refused(
                "it is DPoP-bound, and this request carries no DPoP proof of its key",
            ));
        }
        Ok(token.into_user(self.store()).map_err(as_grant_error)?.user)
    }
}
