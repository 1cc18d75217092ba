//! Who the upstream says logged in, from the tokens of a login's code exchange: for `oidc` the
//! verified ID token ([`super::id_token`]) — and with `userinfo = true` the userinfo endpoint's
//! claims, whose `sub` must be the ID token's (OpenID Connect Core §5.3.2), filling the claims
//! the ID token lacks; for `oauth2` the user-info endpoint's JSON read with the access token.
//! Either way an [`UpstreamIdentity`] whose subject is the mapped `claims.subject`.

use proto::clock::UnixTime;
use serde_json::Value;

use super::Upstream;
use super::claims::UpstreamIdentity;
use super::config::UpstreamKind;
use super::discovery::Metadata;
use super::id_token::{Expected, IdToken};
use super::token::TokenAnswer;
use crate::error::{Error, Result};
use crate::provider::Provider;

impl Provider {
    /// The identity `answer` (the tokens of the login with `nonce`) proves.
    pub(super) async fn verified_identity(
        &self,
        upstream: &Upstream,
        metadata: &Metadata,
        nonce: &str,
        answer: &TokenAnswer,
        now: UnixTime,
    ) -> Result<UpstreamIdentity> {
        let name = &upstream.config.display_name;
        let map = &upstream.config.claims;
        if upstream.config.kind == UpstreamKind::Oauth2 {
            let info = user_info(upstream, metadata, answer).await?;
            return UpstreamIdentity::new(map, info).map_err(|why| {
                Error::upstream_denied(format!("{name}'s user info was refused: {why}"))
            });
        }
        let claims = self.verified_id_token(upstream, nonce, answer, now).await?;
        let sub = claims.string("sub")?.to_owned();
        let mut identity = UpstreamIdentity::new(map, claims.0).map_err(|why| {
            Error::upstream_denied(format!("{name}'s ID token was refused: {why}"))
        })?;
        if upstream.config.userinfo {
            let info = user_info(upstream, metadata, answer).await?;
            if info.get("sub").and_then(Value::as_str) != Some(sub.as_str()) {
                return Err(Error::upstream_denied(format!(
                    "{name}'s user info names another subject than its ID token"
                )));
            }
            identity.fill_from(info);
        }
        Ok(identity)
    }

    /// The claims of the answer's ID token, verified.
    async fn verified_id_token(
        &self,
        upstream: &Upstream,
        nonce: &str,
        answer: &TokenAnswer,
        now: UnixTime,
    ) -> Result<proto::jws::Claims> {
        let name = &upstream.config.display_name;
        let id_token = answer.id_token.as_deref().ok_or_else(|| {
            Error::upstream_denied(format!("the identity provider {name} sent no ID token"))
        })?;
        let refused =
            |why: String| Error::upstream_denied(format!("{name}'s ID token was refused: {why}"));
        let token = IdToken::parse(id_token).map_err(refused)?;
        let mut keys = upstream.keys(now, false).await?;
        if token.key_in(&keys).is_none() {
            keys = upstream.keys(now, true).await?;
        }
        let key = token
            .key_in(&keys)
            .ok_or_else(|| refused("it names no key of the identity provider".into()))?
            .clone();
        let expected = Expected {
            issuer: upstream.issuer(),
            client_id: &upstream.config.client_id,
            nonce,
            skew: self.config.clock_skew,
            now,
        };
        token.verify(&key, &expected).map_err(refused)
    }
}

/// The user-info endpoint's JSON for the answer's access token.
async fn user_info(
    upstream: &Upstream,
    metadata: &Metadata,
    answer: &TokenAnswer,
) -> Result<serde_json::Map<String, Value>> {
    let name = &upstream.config.display_name;
    let endpoint = metadata.userinfo_endpoint.as_deref().ok_or_else(|| {
        Error::upstream_unavailable(format!(
            "the identity provider {name} names no userinfo_endpoint"
        ))
    })?;
    let token = answer.access_token.as_ref().ok_or_else(|| {
        Error::upstream_denied(format!(
            "the identity provider {name} sent no Bearer access token to read the user's info with"
        ))
    })?;
    upstream.userinfo(endpoint, token.expose()).await
}
