//! The JWT bearer grant (RFC 7523 §2.1): a confidential client allowed for the assertion's
//! issuer (its `jwt_bearer` list) presents one JWT of a trusted `[[jwt_bearer_issuer]]`,
//! verified by the checks of §3 ([`crate::jwt_bearer::assertion`]); its `jti` is then
//! recorded, once — of simultaneous presentations of one assertion exactly one gets past this
//! (compare-and-swap), the others are `invalid_grant` — and its subject logs in
//! ([`super::identity_grant`]). Every refusal of the assertion is `invalid_grant` (§3.1); a
//! client not allowed is `unauthorized_client`. Audited: `jwt_bearer.succeeded` and
//! `jwt_bearer.refused` (client, issuer, user or reason).

use proto::clock::UnixTime;
use proto::secret::SecretString;
use serde_json::json;

use super::TokenResponse;
use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::oauth_clients::authentication::IdentifiedClient;
use crate::provider::Provider;
use crate::store;

impl Provider {
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`: the assertion's subject gets tokens.
    pub(super) async fn jwt_bearer_grant(
        &self,
        client: &IdentifiedClient,
        assertion: &SecretString,
        scope: &str,
        resource: Option<String>,
        proof: Option<&FreshProof>,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let client_id = &client.client.id;
        if !self.jwt_issuers.any() {
            return Err(self.unsupported_grant_type());
        }
        if !client.authenticated || client.client.jwt_bearer.is_empty() {
            return Err(Error::unauthorized_client(format!(
                "the client {client_id} may not present JWT-bearer assertions"
            )));
        }
        let issuer = self.jwt_issuers.issuer_of(assertion.expose())?;
        let refused = |reason: &str| {
            self.audit.record(
                now,
                "jwt_bearer.refused",
                json!({"client": client_id, "issuer": issuer.id(), "reason": reason}),
            );
        };
        if !client.client.may_use_jwt_bearer(issuer.id()) {
            refused("unauthorized_client");
            return Err(Error::unauthorized_client(format!(
                "the client {client_id} may not present assertions of {}",
                issuer.config.name()
            )));
        }
        let scope = crate::scopes::grant(scope, &client.client, self.device_scope())?;
        let resource = self.target(resource)?;
        let ours = [self.base_url.clone(), self.url("/token")];
        let verified = match issuer.verify(assertion.expose(), &ours, now).await {
            Ok(verified) => verified,
            Err(e) => {
                refused("assertion_refused");
                return Err(super::identity_grant::as_grant_error(e));
            }
        };
        let first_use = store::replay::remember_bearer_jti(
            self.store(),
            issuer.id(),
            &verified.jti,
            verified.usable_until,
        )?;
        if !first_use {
            refused("replayed");
            return Err(Error::invalid_grant(
                "the assertion was already used (its jti is single-use)",
            ));
        }
        let user = match self.user_of_identity(&issuer.source(), &verified.identity) {
            Ok(user) => user,
            Err(e) => {
                refused("no_account");
                return Err(e);
            }
        };
        self.audit.record(
            now,
            "jwt_bearer.succeeded",
            json!({"client": client_id, "issuer": issuer.id(), "user": user.id}),
        );
        let grant = super::identity_grant::IdentityGrant {
            grant_type: "jwt_bearer",
            client: &client.client,
            user: &user,
            scope: &scope,
            resource,
        };
        self.issue_for_user(&grant, proof, now).await
    }
}
