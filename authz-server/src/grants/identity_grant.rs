//! What the grants that log a user in at `/token` itself share — a remote verifier's
//! (`remote_auth`) and an RFC 7523 assertion's (`jwt_bearer`): the verified identity of a
//! source becomes its linked local account — or, at a first login, what the source's
//! `first_login` says ([`crate::federation::accounts`], the same linking as upstream logins,
//! roles and groups mapped the same way) — and that user gets tokens as after any other user
//! grant ([`super::user_tokens`]): an access token, an ID token when `openid` was granted
//! (`auth_time` now, `amr` `fed`), a refresh token when the client may have one.

use proto::clock::UnixTime;

use super::TokenResponse;
use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::federation::accounts::{IdentitySource, Resolution};
use crate::federation::claims::UpstreamIdentity;
use crate::identity::claims::EchoedClaims;
use crate::oauth_clients::OAuthClient;
use crate::provider::Provider;
use crate::store::{self, users::User};
use crate::tokens::id_token::IdTokenGrant;

/// Seconds after which a source that was unavailable may be asked again.
const RETRY_AFTER_SECS: u64 = 5;

/// An account error of the federation as the token endpoint says it: a refusal (no account,
/// none made) is `invalid_grant`; a link another request is making at this moment is
/// `temporarily_unavailable`.
pub(super) fn as_grant_error(e: Error) -> Error {
    match e {
        Error::Upstream {
            error: "temporarily_unavailable",
            description,
        } => Error::Unavailable {
            description,
            retry_after_secs: RETRY_AFTER_SECS,
        },
        Error::Upstream { description, .. } => Error::invalid_grant(description),
        other => other,
    }
}

impl Provider {
    /// The local account `identity` of `source` logs in to.
    pub(super) fn user_of_identity(
        &self,
        source: &IdentitySource<'_>,
        identity: &UpstreamIdentity,
    ) -> Result<User> {
        let Resolution::Account(account) =
            self.account_of(source, identity).map_err(as_grant_error)?
        else {
            return Err(Error::Internal(format!(
                "{}: first_login = \"link\" at the token endpoint",
                source.id
            )));
        };
        self.sync_authorization(source, identity, account.user)
            .map_err(as_grant_error)
    }

    /// `user`'s tokens for `client` of `scope` (granted already), bound to `proof`'s key if
    /// there is one; durable on return and audited as issued by `grant_type`.
    pub(super) fn issue_for_user(
        &self,
        grant_type: &str,
        client: &OAuthClient,
        user: &User,
        scope: &str,
        proof: Option<&FreshProof>,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let no_echo = EchoedClaims::default();
        let amr = ["fed".to_owned()];
        let id_token = crate::scopes::has(scope, "openid").then_some(IdTokenGrant {
            client_id: &client.id,
            scope,
            nonce: None,
            auth_time: Some(now),
            amr: &amr,
            sid: None,
            echoed: &no_echo,
        });
        let grant = self.new_user_grant(client, user, scope, proof, id_token, now);
        let tokens = self.issue_user_tokens(&grant, now)?;
        store::flush(self.store())?;
        Ok(self.issued(grant_type, &grant, tokens, now))
    }
}
