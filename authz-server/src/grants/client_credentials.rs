//! The client credentials grant (RFC 6749 §4.4): a confidential client, authenticated, gets an
//! access token for itself (`sub` = its client id) with scopes from its registered list.

use proto::clock::UnixTime;
use proto::secret::SecretString;
use serde_json::json;

use super::TokenResponse;
use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::oauth_clients::authentication::IdentifiedClient;
use crate::provider::Provider;
use crate::tokens::access_token::{self, AccessGrant};

impl Provider {
    /// `client_credentials`: an access token for the client, bound to the request's proof if
    /// it had one.
    pub(super) fn client_credentials(
        &self,
        client: &IdentifiedClient,
        scope: &str,
        proof: Option<&FreshProof>,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        if !client.authenticated {
            return Err(Error::OAuth {
                code: "unauthorized_client",
                description: "client_credentials is for confidential clients".into(),
            });
        }
        let client = &client.client;
        let scope = crate::scopes::grant(scope, client, self.device_scope())?;
        let jkt = proof.map(FreshProof::thumbprint);
        let access = access_token::issue(
            &self.issuer(),
            &AccessGrant {
                subject: &client.id,
                client_id: &client.id,
                scope: &scope,
                jkt,
                audience: None,
                authorization: None,
            },
            now,
        )?;
        tracing::info!(client_id = %client.id, dpop = jkt.is_some(), "client credentials token issued");
        self.audit.record(
            now,
            "token.issued",
            json!({"grant": "client_credentials", "client": client.id, "dpop": jkt.is_some()}),
        );
        Ok(TokenResponse {
            access_token: SecretString::new(access.token),
            dpop_bound: jkt.is_some(),
            expires_in: Some(self.config.lifetimes.access_token),
            scope: Some(scope),
            refresh_token: None,
            id_token: None,
            issued_token_type: None,
        })
    }
}
