//! The token endpoint's service (RFC 6749 §3.2): a [`TokenRequest`] of an identified client,
//! with the request's DPoP proof if it had one, exchanged for tokens — by authorization code
//! with PKCE (`authorization_code`), refresh token with rotation (`refresh_token`), client
//! credentials (`client_credentials`), device code (`device_code`), or — for an allowed
//! confidential client — one of our access tokens for the upstream access token kept for its
//! user (RFC 8693 token exchange, `token_exchange`), a JWT of a trusted issuer (RFC 7523,
//! `jwt_bearer`), or what a client presents to a remote verifier that vouches for its user
//! (`remote_auth`; both through `identity_grant`). Tokens are DPoP-bound
//! (`cnf.jkt`, RFC 9449 §5) when the request carried a fresh proof; a user's tokens — access
//! token, ID token when `openid` was granted, refresh token when
//! [`crate::scopes::refresh_token_allowed`] says so — are issued in one place
//! (`user_tokens`), for the user [`crate::identity`] says the grant is for.

mod authorization_code;
mod client_credentials;
mod device_code;
mod identity_grant;
mod jwt_bearer;
mod refresh_token;
mod remote_auth;
pub mod request;
mod token_exchange;
mod user_tokens;

use proto::clock::UnixTime;
use proto::secret::SecretString;

pub use request::{ACCESS_TOKEN_TYPE, GRANT_TYPES, JWT_BEARER, TOKEN_EXCHANGE, TokenRequest};

use std::net::IpAddr;

use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::oauth_clients::authentication::IdentifiedClient;
use crate::provider::Provider;

/// What a successful token request is answered with (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: SecretString,
    /// Whether it is DPoP-bound (`token_type` `DPoP`, else `Bearer`).
    pub dpop_bound: bool,
    /// Its lifetime in seconds, when known.
    pub expires_in: Option<i64>,
    /// The scope granted, when known.
    pub scope: Option<String>,
    /// A refresh token, when one is issued.
    pub refresh_token: Option<SecretString>,
    /// An ID token, when `openid` was granted to a user.
    pub id_token: Option<String>,
    /// A token exchange's `issued_token_type`.
    pub issued_token_type: Option<&'static str>,
}

impl Provider {
    /// The grant types `/token` accepts here (`grant_types_supported`): the built-in ones
    /// ([`JWT_BEARER`] once an issuer is configured) and the remote verifiers'.
    pub fn grant_types_supported(&self) -> Vec<&str> {
        GRANT_TYPES
            .iter()
            .copied()
            .filter(|g| *g != JWT_BEARER || self.jwt_issuers.any())
            .chain(self.remote_verifiers.grant_types())
            .collect()
    }

    /// `unsupported_grant_type`, naming every grant type supported here.
    pub fn unsupported_grant_type(&self) -> Error {
        Error::OAuth {
            code: "unsupported_grant_type",
            description: format!("supported: {}", self.grant_types_supported().join(", ")),
        }
    }

    /// Exchanges a token request of `client` from `peer`, with `proof` the request's DPoP
    /// proof if it had one.
    pub async fn exchange(
        &self,
        request: TokenRequest,
        client: &IdentifiedClient,
        proof: Option<FreshProof>,
        peer: IpAddr,
        now: UnixTime,
    ) -> Result<TokenResponse> {
        let proof = proof.as_ref();
        match request {
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
                resource,
            } => {
                let presented = authorization_code::PresentedCode {
                    code: &code,
                    redirect_uri: &redirect_uri,
                    verifier: code_verifier.as_ref(),
                };
                self.exchange_code(client, &presented, resource, proof, now)
                    .await
            }
            TokenRequest::RefreshToken {
                refresh_token,
                resource,
            } => {
                self.exchange_refresh_token(client, &refresh_token, resource, proof, now)
                    .await
            }
            TokenRequest::ClientCredentials { scope } => {
                self.client_credentials(client, &scope, proof, now)
            }
            TokenRequest::DeviceCode {
                device_code,
                resource,
            } => {
                self.exchange_device_code(client, &device_code, resource, proof, now)
                    .await
            }
            TokenRequest::TokenExchange(exchange) => {
                self.exchange_for_upstream_token(client, &exchange, proof, now)
                    .await
            }
            TokenRequest::JwtBearer {
                assertion,
                scope,
                resource,
            } => {
                self.jwt_bearer_grant(client, &assertion, &scope, resource, proof, now)
                    .await
            }
            TokenRequest::RemoteAuth(remote) => {
                self.remote_auth_grant(client, &remote, proof, peer, now)
                    .await
            }
        }
    }
}

/// The key a grant is bound to must have signed the request's proof (RFC 9449 §10 for a code
/// with `dpop_jkt`, §5 for a bound refresh token).
fn check_binding(bound_to: Option<&str>, proof: Option<&FreshProof>) -> Result<()> {
    match (bound_to, proof) {
        (None, _) => Ok(()),
        (Some(jkt), Some(p)) if p.thumbprint() == jkt => Ok(()),
        (Some(_), Some(_)) => Err(Error::InvalidDpopProof(proto::Error::CnfMismatch)),
        (Some(_), None) => Err(Error::InvalidDpopProof(proto::Error::MissingDpopHeader)),
    }
}
