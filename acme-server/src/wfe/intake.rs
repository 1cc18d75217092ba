//! JWS intake (RFC 8555 §6.2–§6.5) as one ordered pipeline; each step refuses with its own
//! problem type:
//!
//! 1. `Content-Type: application/jose+json` (415 otherwise);
//! 2. flattened JSON serialization, no unprotected header, allow-listed `alg`, `jwk` xor
//!    `kid`, `typ` absent or `JWT` ([`proto::acme_jws::AcmeRequest::parse`]);
//! 3. `jwk` only where the endpoint allows it, `kid` everywhere else;
//! 4. the nonce, redeemed exactly once (`badNonce`);
//! 5. `url` equal to the URL the request was sent to (`unauthorized`);
//! 6. the key: the embedded `jwk`, or the account named by `kid` (`accountDoesNotExist`,
//!    `unauthorized` if deactivated);
//! 7. the signature.
//!
//! Handlers take an [`AccountRequest`] or a [`KeyRequest`] as an extractor (the verified
//! payload and who signed it); there is no other way to reach the registration authority with a
//! signed request.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use proto::acme::{AccountStatus, BAD_NONCE_DETAIL};
use proto::acme_jws::{AcmeRequest, RequestKey, VerifiedAcmeRequest};
use proto::jwk::Jwk;

use super::{AppState, SharedState};
use crate::error::{Error, ProblemType, Result, jws_problem, status_name};
use crate::ra::AuthenticatedAccount;

/// A request signed by the key it embeds (newAccount).
#[derive(Debug)]
pub struct KeyRequest {
    /// The verified key.
    pub jwk: Jwk,
    /// The verified request.
    pub request: VerifiedAcmeRequest,
}

/// A request signed by an account's key.
#[derive(Debug)]
pub struct AccountRequest {
    /// The account.
    pub account: AuthenticatedAccount,
    /// The verified request.
    pub request: VerifiedAcmeRequest,
}

/// The request body, at most `[limits] max_body_bytes` of it (a CSR or a token answer is a few
/// KiB; a declared larger body was refused with 413 before the handler ran, a larger chunked
/// one is refused with 413 here).
async fn read_body(
    request: Request,
    state: &SharedState,
) -> Result<(axum::http::request::Parts, Vec<u8>)> {
    let (parts, body) = request.into_parts();
    let bytes = super::body::read_limited(body, state.config.limits.max_body_bytes).await?;
    Ok((parts, bytes))
}

/// The whole pipeline for a request whose key identification `allowed` admits.
async fn signed_request(
    request: Request,
    state: &SharedState,
    allowed: Allowed,
) -> Result<SignedRequest> {
    let (parts, body) = read_body(request, state).await?;
    state.authenticate(
        &parts.headers,
        parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        &body,
        allowed,
    )
}

impl FromRequest<SharedState> for KeyRequest {
    type Rejection = Error;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self> {
        match signed_request(request, state, Allowed::JwkOnly).await? {
            SignedRequest::Key(k) => Ok(k),
            SignedRequest::Account(_) => {
                Err(Error::Internal("kid passed a jwk-only intake".into()))
            }
        }
    }
}

impl FromRequest<SharedState> for AccountRequest {
    type Rejection = Error;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self> {
        match signed_request(request, state, Allowed::KidOnly).await? {
            SignedRequest::Account(a) => Ok(a),
            SignedRequest::Key(_) => Err(Error::Internal("jwk passed a kid-only intake".into())),
        }
    }
}

fn jws_error(e: &proto::Error) -> Error {
    let kind = jws_problem(e);
    let detail = match kind {
        ProblemType::BadNonce => BAD_NONCE_DETAIL.to_owned(),
        _ => format!("JWS: {e}"),
    };
    Error::problem(kind, detail)
}

impl AppState {
    /// Steps 1 and 2.
    fn parse_request(&self, headers: &HeaderMap, body: &[u8]) -> Result<AcmeRequest> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.eq_ignore_ascii_case("application/jose+json") {
            return Err(Error::UnsupportedMediaType);
        }
        AcmeRequest::parse(body).map_err(|e| jws_error(&e))
    }

    /// Steps 4 and 5.
    fn check_nonce_and_url(&self, request: &AcmeRequest, path: &str) -> Result<()> {
        if !self.nonces.redeem(request.nonce(), self.clock.now())? {
            return Err(Error::problem(ProblemType::BadNonce, BAD_NONCE_DETAIL));
        }
        let expected = self.urls.of_path(path);
        if request.url() != expected {
            return Err(Error::unauthorized(format!(
                "the JWS url {:?} is not the request URL {expected:?}",
                request.url()
            )));
        }
        Ok(())
    }

    /// Steps 3 (with `allowed`), 4, 5, 6 and 7.
    fn authenticate(
        &self,
        headers: &HeaderMap,
        path: &str,
        body: &[u8],
        allowed: Allowed,
    ) -> Result<SignedRequest> {
        let request = self.parse_request(headers, body)?;
        match (request.key().clone(), allowed) {
            (RequestKey::Kid(_), Allowed::JwkOnly) => {
                return Err(Error::malformed("this request must carry a jwk, not a kid"));
            }
            (RequestKey::Jwk(_), Allowed::KidOnly) => {
                return Err(Error::malformed("this request must carry a kid, not a jwk"));
            }
            _ => {}
        }
        self.check_nonce_and_url(&request, path)?;
        match request.key().clone() {
            RequestKey::Jwk(jwk) => {
                let request = request.verify(&jwk).map_err(|e| jws_error(&e))?;
                Ok(SignedRequest::Key(KeyRequest { jwk, request }))
            }
            RequestKey::Kid(kid) => {
                let not_found =
                    || Error::problem(ProblemType::AccountDoesNotExist, "the kid names no account");
                let id = self.urls.account_id_of(&kid).ok_or_else(not_found)?;
                let record = self.storage.account(id)?.ok_or_else(not_found)?;
                let request = request.verify(&record.jwk).map_err(|e| jws_error(&e))?;
                if record.status != AccountStatus::Valid {
                    return Err(Error::unauthorized(format!(
                        "the account is {}",
                        status_name(record.status)
                    )));
                }
                Ok(SignedRequest::Account(AccountRequest {
                    account: AuthenticatedAccount::new(record),
                    request,
                }))
            }
        }
    }
}

/// Which key identification an endpoint accepts (RFC 8555 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowed {
    JwkOnly,
    KidOnly,
    Either,
}

/// A request signed by an account or by the key it embeds (revokeCert).
#[derive(Debug)]
pub enum SignedRequest {
    /// Signed by the embedded key.
    Key(KeyRequest),
    /// Signed by an account.
    Account(AccountRequest),
}

impl FromRequest<SharedState> for SignedRequest {
    type Rejection = Error;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self> {
        signed_request(request, state, Allowed::Either).await
    }
}
