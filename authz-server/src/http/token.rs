//! `POST /token`: reads the `grant_type`, authenticates the client, takes a token request of
//! its limit, verifies the request's DPoP proof if it has one, reads the typed token request
//! ([`TokenRequest`]) and has the provider exchange it ([`crate::grants`]); the answer is the
//! RFC 6749 §5.1 JSON, never cached.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use proto::dpop::single_dpop_header;
use serde_json::json;

use super::SharedState;
use super::client_auth::authenticate_client;
use crate::dpop::FreshProof;
use crate::error::{Error, Result};
use crate::grants::{TokenRequest, TokenResponse};

/// `POST /token`.
pub async fn token(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    let grant_type = crate::grants::request::grant_type(&form)?;
    let client = authenticate_client(&state, &headers, &form)?;
    state.limiters.token_request(&client.client.id)?;
    let now = state.now();
    let proof = proof(&state, &headers, now)?;
    let request = TokenRequest::parse(grant_type, &form).map_err(|e| match e {
        Error::OAuth {
            code: "unsupported_grant_type",
            ..
        } => state.unsupported_grant_type(),
        other => other,
    })?;
    let issued = state
        .exchange(request, &client, proof, peer.ip(), now)
        .await?;
    Ok(render(&issued))
}

/// The request's DPoP proof, if it has a `DPoP` header.
fn proof(state: &SharedState, headers: &HeaderMap, now: i64) -> Result<Option<FreshProof>> {
    if !headers.contains_key("dpop") {
        return Ok(None);
    }
    let raw = single_dpop_header(super::dpop_headers(headers)).map_err(Error::InvalidDpopProof)?;
    state.token_endpoint_proof(raw, now).map(Some)
}

/// The token response (RFC 6749 §5.1, RFC 8693 §2.2.1): `no-store`, `no-cache`.
fn render(issued: &TokenResponse) -> Response {
    let mut body = json!({
        "access_token": issued.access_token.expose(),
        "token_type": if issued.dpop_bound { "DPoP" } else { "Bearer" },
    });
    if let Some(issued_token_type) = issued.issued_token_type {
        body["issued_token_type"] = issued_token_type.into();
    }
    if let Some(expires_in) = issued.expires_in {
        body["expires_in"] = expires_in.into();
    }
    if let Some(scope) = &issued.scope {
        body["scope"] = scope.clone().into();
    }
    if let Some(refresh_token) = &issued.refresh_token {
        body["refresh_token"] = refresh_token.expose().into();
    }
    if let Some(id_token) = &issued.id_token {
        body["id_token"] = id_token.clone().into();
    }
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
        .headers_mut()
        .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    response
}
