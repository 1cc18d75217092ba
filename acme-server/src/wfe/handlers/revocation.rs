//! revokeCert (RFC 8555 §7.6), keyChange (§7.3.5) and the CRLs (one per CA).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{json_response, payload};
use crate::ca::Hierarchy;
use crate::error::{Error, Result};
use crate::ra::revocation::Revoker;
use crate::wfe::intake::{AccountRequest, SignedRequest};
use crate::wfe::{SharedState, render};

#[derive(Debug, Deserialize)]
struct RevokeCert {
    certificate: String,
    reason: Option<u8>,
}

/// `POST revokeCert`, signed by the owning account (`kid`) or the certificate's key (`jwk`).
pub async fn revoke_cert(State(state): State<SharedState>, req: SignedRequest) -> Result<Response> {
    let (revoker, body) = match &req {
        SignedRequest::Account(a) => (Revoker::Account(&a.account), a.request.payload()),
        SignedRequest::Key(k) => (Revoker::CertificateKey(&k.jwk), k.request.payload()),
    };
    let request: RevokeCert = payload(body)?;
    let der = proto::b64::decode(&request.certificate, "certificate")
        .map_err(|_| Error::malformed("certificate is not base64url"))?;
    state.ra.revoke(revoker, &der, request.reason)?;
    Ok(StatusCode::OK.into_response())
}

/// `POST keyChange`.
pub async fn key_change(State(state): State<SharedState>, req: AccountRequest) -> Result<Response> {
    let kid = state.urls.account(req.account.id());
    let url = state.urls.key_change();
    let record = state
        .ra
        .change_key(&req.account, &kid, &url, req.request.payload(), |id| {
            state.urls.account(id)
        })?;
    Ok(json_response(
        StatusCode::OK,
        &render::account(&state.urls, &record),
        Some(&kid),
        &[],
    ))
}

/// `GET crl`: the DER CRL of the identity CA.
pub async fn crl(State(state): State<SharedState>) -> Result<Response> {
    crl_response(&state, Hierarchy::Identity)
}

/// `GET crl/names`: the DER CRL of the name CA (404 while standard orders are disabled).
pub async fn names_crl(State(state): State<SharedState>) -> Result<Response> {
    crl_response(&state, Hierarchy::Names)
}

fn crl_response(state: &SharedState, hierarchy: Hierarchy) -> Result<Response> {
    let der = state.ra.crl(hierarchy)?;
    let mut response = (StatusCode::OK, der).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pkix-crl"),
    );
    Ok(response)
}
