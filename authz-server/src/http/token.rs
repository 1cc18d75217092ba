//! `/token`: the authorization code grant with PKCE, DPoP-binding the tokens when the request
//! carries a valid proof (RFC 9449 §5), with a `jti` replay cache for those proofs.

use std::collections::HashMap;

use axum::Form;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use proto::dpop::{
    DpopCheck, DpopPolicy, NonceCheck, VerifiedDpopProof, single_dpop_header, verify_dpop_proof,
};
use serde_json::json;

use super::SharedState;
use crate::error::{Error, Result};
use crate::store::trees;

/// `POST /token`.
pub async fn token(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    match field("grant_type") {
        "authorization_code" => {}
        "" => return Err(Error::invalid_request("grant_type is missing")),
        _ => {
            return Err(Error::OAuth {
                code: "unsupported_grant_type",
                description: "only authorization_code is supported".into(),
            });
        }
    }
    let client_id = field("client_id");
    if client_id.is_empty() || crate::users::client(state.store(), client_id)?.is_none() {
        return Err(Error::InvalidClient("unknown client".into()));
    }
    let now = state.clock.now();
    let redeemed = crate::grants::redeem(
        state.store(),
        field("code"),
        client_id,
        field("redirect_uri"),
        field("code_verifier"),
        now,
    )?;
    let proof = dpop_proof(&state, &headers, now)?;
    if let Some(expected) = &redeemed.grant.dpop_jkt {
        match &proof {
            Some(p) if p.thumbprint() == expected => {}
            Some(_) => return Err(Error::InvalidDpopProof(proto::Error::CnfMismatch)),
            None => return Err(Error::InvalidDpopProof(proto::Error::MissingDpopHeader)),
        }
    }
    let user = crate::users::get(state.store(), &redeemed.grant.user_id)?
        .ok_or_else(|| Error::invalid_grant("the user no longer exists"))?;
    let tokens = crate::tokens::issue_for_grant(
        &state.issuer(),
        &redeemed.grant,
        &user,
        proof.as_ref(),
        now,
    )?;
    let scope = redeemed.grant.scope.clone();
    redeemed.commit(state.store(), vec![tokens.access_jti.clone()])?;
    tracing::info!(client_id, user = %user.id, dpop = tokens.dpop_bound, "tokens issued");
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": if tokens.dpop_bound { "DPoP" } else { "Bearer" },
        "expires_in": tokens.expires_in,
        "scope": scope,
    });
    if let Some(id_token) = tokens.id_token {
        body["id_token"] = id_token.into();
    }
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
        .headers_mut()
        .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Verifies the request's DPoP proof, if it has one, and records its `jti`.
fn dpop_proof(
    state: &SharedState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<VerifiedDpopProof>> {
    if !headers.contains_key("dpop") {
        return Ok(None);
    }
    let raw = single_dpop_header(headers.get_all("dpop").iter().map(|v| v.as_bytes()))
        .map_err(Error::InvalidDpopProof)?;
    let token_url = state.url("/token");
    let check = DpopCheck {
        htm: "POST",
        htu: &token_url,
        nonce: NonceCheck::NotRequired,
        access_token: None,
        wire: None,
    };
    let policy = DpopPolicy::rfc9449();
    let proof = verify_dpop_proof(raw, &check, &policy, now).map_err(Error::InvalidDpopProof)?;
    let replay_key = format!("{}:{}", proof.thumbprint(), proof.claims().jti);
    let expires = json!({ "expires_at": proof.claims().iat + policy.max_age + policy.max_skew });
    if !state
        .store()
        .insert_new_json(trees::DPOP_JTIS, &replay_key, &expires)?
    {
        return Err(Error::InvalidDpopProof(proto::Error::InvalidClaim("jti")));
    }
    Ok(Some(proof))
}
