//! A user's tokens, issued the same way by every grant for a user (code, refresh, device
//! code): an access token for the user, client, scope and key binding of the grant; an ID
//! token when the grant carries one; and the refresh token the grant calls for — the first of
//! a new family, the next of the family being rotated, or none.

use proto::clock::UnixTime;
use proto::secret::SecretString;
use serde_json::{Map, Value, json};

use super::TokenResponse;
use crate::dpop::FreshProof;
use crate::error::Result;
use crate::oauth_clients::OAuthClient;
use crate::provider::Provider;
use crate::store;
use crate::store::refresh_tokens::RefreshRecord;
use crate::store::users::User;
use crate::tokens::access_token::{self, AccessGrant};
use crate::tokens::id_token::{self, IdTokenGrant};

/// Which refresh token a grant hands out.
#[derive(Debug, Clone, Copy)]
pub(super) enum RefreshIssue<'a> {
    /// The next token of this family (the refresh grant).
    Rotate(&'a str),
    /// The first token of a new family.
    Start,
    /// None (a third-party client without `offline_access`).
    Withheld,
}

/// What a user's tokens are issued for.
#[derive(Debug)]
pub(super) struct UserGrant<'a> {
    /// The user.
    pub user: &'a User,
    /// The client, scope, key binding and lifetime of the tokens, as their refresh token
    /// records them.
    pub template: RefreshRecord,
    /// The refresh token to hand out.
    pub refresh: RefreshIssue<'a>,
    /// The ID token to issue with the access token, if any.
    pub id_token: Option<IdTokenGrant<'a>>,
    /// The access-token claims the permission sources gave ([`Provider::sourced_claims`]).
    pub sourced: Map<String, Value>,
}

/// A user's tokens, signed and (the refresh token) stored, not yet made durable.
#[derive(Debug)]
pub(super) struct UserTokens {
    /// The answer.
    pub response: TokenResponse,
    /// The access token's `jti`.
    pub access_jti: String,
    /// The refresh token family it started or continued, if a refresh token was issued.
    pub family: Option<String>,
}

/// The record of a new family's first refresh token, granted `now` and living `lifetime`.
pub(super) fn new_family(
    client_id: &str,
    user_id: &str,
    scope: &str,
    jkt: Option<&str>,
    lifetime: i64,
    now: UnixTime,
) -> RefreshRecord {
    RefreshRecord {
        family: String::new(),
        client_id: client_id.to_owned(),
        user_id: user_id.to_owned(),
        scope: scope.to_owned(),
        jkt: jkt.map(str::to_owned),
        expires_at: now + lifetime,
        used: false,
        granted_at: now,
        resource: None,
    }
}

impl Provider {
    /// A grant made `now` (by a code or a device code) to `user` of `scope` for `client`,
    /// bound to `proof`'s key if there is one: a new refresh token family when
    /// [`crate::scopes::refresh_token_allowed`] says so, and the ID token `id_token`.
    pub(super) fn new_user_grant<'a>(
        &self,
        client: &OAuthClient,
        user: &'a User,
        scope: &str,
        proof: Option<&FreshProof>,
        id_token: Option<IdTokenGrant<'a>>,
        now: UnixTime,
    ) -> UserGrant<'a> {
        let refresh = if crate::scopes::refresh_token_allowed(client, scope) {
            RefreshIssue::Start
        } else {
            RefreshIssue::Withheld
        };
        UserGrant {
            user,
            template: new_family(
                &client.id,
                &user.id,
                scope,
                proof.map(FreshProof::thumbprint),
                self.config.lifetimes.refresh_token,
                now,
            ),
            refresh,
            id_token,
            sourced: Map::new(),
        }
    }

    /// The audience a token request's RFC 8707 `resource` asks for: none for this server
    /// itself (or no resource), else a resource a permission source names (`invalid_target`
    /// otherwise).
    pub(super) fn target(&self, resource: Option<String>) -> Result<Option<String>> {
        match resource {
            Some(r) if r != self.base_url => {
                self.claims_sources.check_resource(&r)?;
                Ok(Some(r))
            }
            _ => Ok(None),
        }
    }

    /// The claims the permission sources give `user`'s access token for `client_id`, `scope`
    /// and `resource` (a [`Self::target`]). Asked before anything single-use is consumed, so a
    /// source that fails closed leaves the code or refresh token usable for a retry.
    pub(super) async fn sourced_claims(
        &self,
        user: &User,
        client_id: &str,
        scope: &str,
        resource: Option<&str>,
        now: UnixTime,
    ) -> Result<Map<String, Value>> {
        let question = crate::claims_sources::ClaimsQuestion {
            user,
            client_id,
            scope,
            resource,
        };
        self.claims_sources.claims_for(&question, now).await
    }

    /// Signs the access token and the ID token, then stores the refresh token (so a failure to
    /// sign leaves no family behind). The caller makes it durable.
    pub(super) fn issue_user_tokens(
        &self,
        grant: &UserGrant<'_>,
        now: UnixTime,
    ) -> Result<UserTokens> {
        let template = &grant.template;
        let issuer = self.issuer();
        let mut authorization =
            crate::identity::claims::authorization_claims(grant.user, &template.scope);
        authorization.extend(grant.sourced.clone());
        let access = access_token::issue(
            &issuer,
            &AccessGrant {
                subject: &template.user_id,
                client_id: &template.client_id,
                scope: &template.scope,
                jkt: template.jkt.as_deref(),
                audience: template.resource.as_deref(),
                authorization: Some(&authorization),
            },
            now,
        )?;
        let id_token = grant
            .id_token
            .as_ref()
            .map(|id| id_token::issue(&issuer, id, grant.user, &access.token, now))
            .transpose()?;
        let store = self.store();
        let (refresh_token, family) = match grant.refresh {
            RefreshIssue::Rotate(family) => {
                let next = super::refresh_token::rotate(store, family, template, &access.jti)?;
                (Some(next), Some(family.to_owned()))
            }
            RefreshIssue::Start => {
                let issued = store::refresh_tokens::start_family(store, template, &access.jti)?;
                (Some(issued.token), Some(issued.family))
            }
            RefreshIssue::Withheld => (None, None),
        };
        Ok(UserTokens {
            response: TokenResponse {
                access_token: SecretString::new(access.token),
                dpop_bound: template.jkt.is_some(),
                expires_in: Some(self.config.lifetimes.access_token),
                scope: Some(template.scope.clone()),
                refresh_token: refresh_token.map(SecretString::new),
                id_token,
                issued_token_type: None,
            },
            access_jti: access.jti,
            family,
        })
    }

    /// Records in the audit log that `tokens` were issued to the user by `grant_type`, and
    /// hands out the answer.
    pub(super) fn issued(
        &self,
        grant_type: &str,
        grant: &UserGrant<'_>,
        tokens: UserTokens,
        now: UnixTime,
    ) -> TokenResponse {
        let template = &grant.template;
        self.audit.record(
            now,
            "token.issued",
            json!({"grant": grant_type, "client": template.client_id, "user": template.user_id,
                   "jti": tokens.access_jti, "dpop": template.jkt.is_some()}),
        );
        tokens.response
    }
}
