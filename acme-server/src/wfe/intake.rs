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
use crate::error::{Error, ProblemType, Result, jws_problem};
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

/// Largest request body read (a CSR or a token answer is a few KiB).
const MAX_BODY_BYTES: usize = 64 * 1024;

async fn read_body(request: Request) -> Result<(axum::http::request::Parts, Vec<u8>)> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| Error::malformed("the request body is unreadable or too large"))?;
    Ok((parts, bytes.to_vec()))
}

impl FromRequest<SharedState> for KeyRequest {
    type Rejection = Error;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self> {
        let (parts, body) = read_body(request).await?;
        state.key_request(&parts.headers, parts.uri.path(), &body)
    }
}

impl FromRequest<SharedState> for AccountRequest {
    type Rejection = Error;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self> {
        let (parts, body) = read_body(request).await?;
        state.account_request(&parts.headers, parts.uri.path(), &body)
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
        if !self.nonces.redeem(request.nonce(), self.clock.now()) {
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

    /// Authenticates a request that must embed its key (`jwk`).
    pub fn key_request(&self, headers: &HeaderMap, path: &str, body: &[u8]) -> Result<KeyRequest> {
        let request = self.parse_request(headers, body)?;
        let RequestKey::Jwk(jwk) = request.key().clone() else {
            return Err(Error::malformed("this request must carry a jwk, not a kid"));
        };
        self.check_nonce_and_url(&request, path)?;
        let request = request.verify(&jwk).map_err(|e| jws_error(&e))?;
        Ok(KeyRequest { jwk, request })
    }

    /// Authenticates a request signed by an account (`kid`).
    pub fn account_request(
        &self,
        headers: &HeaderMap,
        path: &str,
        body: &[u8],
    ) -> Result<AccountRequest> {
        let request = self.parse_request(headers, body)?;
        let RequestKey::Kid(kid) = request.key().clone() else {
            return Err(Error::malformed("this request must carry a kid, not a jwk"));
        };
        self.check_nonce_and_url(&request, path)?;
        let not_found =
            || Error::problem(ProblemType::AccountDoesNotExist, "the kid names no account");
        let id = self.urls.account_id_of(&kid).ok_or_else(not_found)?;
        let record = self.ra.sa().account(id)?.ok_or_else(not_found)?.value;
        let key = record.key()?;
        let request = request.verify(&key).map_err(|e| jws_error(&e))?;
        if record.status != AccountStatus::Valid {
            return Err(Error::unauthorized(format!(
                "the account is {:?}",
                record.status
            )));
        }
        Ok(AccountRequest {
            account: AuthenticatedAccount::new(record, key),
            request,
        })
    }
}
