//! What the grants that log a user in at `/token` itself share — a remote verifier's
//! (`remote_auth`) and an RFC 7523 assertion's (`jwt_bearer`): the verified identity of a
//! source becomes its linked local account — or, at a first login, what the source's
//! `first_login` says ([`crate::federation::accounts`], the same linking as upstream logins,
//! roles and groups mapped the same way) — and that user gets tokens as after any other user
//! grant ([`super::user_tokens`]): an access token, an ID token when `openid` was granted
//! (`auth_time` now, `amr` `fed`), a refresh token when the client may have one — with the
//! permission sources' claims for the token's RFC 8707 resource, if the request named one.

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

/// The tokens a login at `/token` issues: by which grant, to which client and user, of which
/// (granted) scope, for which resource (a [`Provider::target`]).
#[derive(Debug)]
pub(super) struct IdentityGrant<'a> {
    /// The grant type, as audited.
    pub grant_type: &'static str,
    /// The client.
    pub client: &'a OAuthClient,
    /// The user the source vouched for.
    pub user: &'a User,
    /// The granted scope.
    pub scope: &'a str,
    /// The resource, if not this server.
    pub resource: Option<String>,
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

    /// The tokens of `grant`, bound to `proof`'s key if there is one, with the permission
    /// sources' claims; durable on return and audited.
    pub(super) async fn issue_for_user(
        &self,
        grant: &IdentityGrant<'_>,
        proof: Option<&FreshProof>,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let IdentityGrant {
            grant_type,
            client,
            user,
            scope,
            ..
        } = *grant;
        let resource = grant.resource.clone();
        let sourced = self
            .sourced_claims(user, &client.id, scope, resource.as_deref(), now)
            .await?;
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
        let mut grant = self.new_user_grant(client, user, scope, proof, id_token, now);
        grant.template.resource = resource;
        grant.sourced = sourced;
        let tokens = self.issue_user_tokens(&grant, now)?;
        store::flush(self.store())?;
        Ok(self.issued(grant_type, &grant, tokens, now))
    }
}
