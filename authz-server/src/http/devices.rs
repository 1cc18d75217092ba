//! The Wire device endpoints: register, list and delete a user's devices, hand out backend
//! nonces, and exchange a device's DPoP proof for a DPoP access token (DESIGN §4 steps 3–5).
//!
//! Each of them first checks who calls (`[device_access]`): a valid access token of the user
//! with the device scope, issued to a client that is still allowed that scope and — unless
//! configured otherwise — first-party; anything else is 403 `insufficient_scope`. Then the
//! device must be the caller's own (404 otherwise).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::access_token::{AccessTokenParams, issue_access_token};
use proto::dpop::{
    DpopCheck, DpopPolicy, NonceCheck, WireExpectations, single_dpop_header, verify_dpop_proof,
};
use serde::Deserialize;
use serde_json::json;

use super::SharedState;
use crate::devices::{self, Device};
use crate::error::{Error, Result};
use crate::tokens::{AuthenticatedUser, ProofUse};

/// Authenticates a request to a device endpoint at `path` and checks the caller may use the
/// device endpoints at all.
fn auth(
    state: &SharedState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
) -> Result<AuthenticatedUser> {
    let htu = state.url(path);
    let proof_use = ProofUse::Resource {
        htm: method.as_str(),
        htu: &htu,
    };
    authorized(state, headers, proof_use)
}

/// The user of a request whose access token may use the device endpoints: it carries the device
/// scope, its client is still registered and allowed that scope, and is first-party when
/// `device_access.first_party_only` is set.
fn authorized(
    state: &SharedState,
    headers: &HeaderMap,
    proof_use: ProofUse<'_>,
) -> Result<AuthenticatedUser> {
    let access = &state.config.device_access;
    super::access::authorized(
        state,
        headers,
        proof_use,
        super::access::Requirement {
            scope: &access.scope,
            first_party: access.first_party_only,
            what: "the device endpoints",
        },
    )
}

fn device_of(state: &SharedState, auth: &AuthenticatedUser, device_id: &str) -> Result<Device> {
    devices::get(state.store(), &auth.user, device_id)?
        .ok_or_else(|| Error::not_found("client-not-found", "no such device for this user"))
}

/// Body of `POST /clients`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// A label for the device.
    label: Option<String>,
}

/// `POST /clients`: registers a device of the authenticated user.
pub async fn register(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
    body: Option<Json<NewDevice>>,
) -> Result<Response> {
    let auth = auth(&state, &headers, &method, "/clients")?;
    let label = body.and_then(|Json(b)| b.label);
    let device = devices::register(
        state.store(),
        &auth.user,
        label,
        state.clock.now(),
        state.config.caps.devices_per_user,
    )?;
    let client_id = devices::client_id(&auth.user, &device)?;
    tracing::info!(user = %auth.user.id, device = %device.id, "device registered");
    state.audit.record(
        state.clock.now(),
        "device.registered",
        json!({"user": auth.user.id, "device": device.id}),
    );
    let body = json!({"id": device.id, "client_id": client_id.to_uri(), "label": device.label});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /clients`: the user's devices.
pub async fn list(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let auth = auth(&state, &headers, &method, "/clients")?;
    let devices = devices::list(state.store(), &auth.user)?;
    let items: Result<Vec<_>> = devices
        .iter()
        .map(|d| {
            let client_id = devices::client_id(&auth.user, d)?;
            Ok(json!({"id": d.id, "client_id": client_id.to_uri(), "label": d.label, "created_at": d.created_at}))
        })
        .collect();
    Ok(Json(items?).into_response())
}

/// `DELETE /clients/{device}`: removes the user's device with its backend nonces; its place
/// under `caps.devices_per_user` is free again. 204, or 404 when the user has no such device
/// (another user's included).
pub async fn remove(
    State(state): State<SharedState>,
    Path(device_id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let auth = auth(&state, &headers, &method, &format!("/clients/{device_id}"))?;
    let device = device_of(&state, &auth, &device_id)?;
    if !devices::remove(state.store(), &auth.user, &device)? {
        return Err(Error::not_found(
            "client-not-found",
            "no such device for this user",
        ));
    }
    tracing::info!(user = %auth.user.id, device = %device.id, "device deleted");
    state.audit.record(
        state.clock.now(),
        "device.deleted",
        json!({"user": auth.user.id, "device": device.id, "client": auth.client_id}),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `HEAD`/`GET /clients/{device}/nonce`: a fresh single-use backend nonce in `Replay-Nonce`.
pub async fn nonce(
    State(state): State<SharedState>,
    Path(device_id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let auth = auth(
        &state,
        &headers,
        &method,
        &format!("/clients/{device_id}/nonce"),
    )?;
    let device = device_of(&state, &auth, &device_id)?;
    let nonce = devices::issue_nonce(
        state.store(),
        &auth.user,
        &device,
        state.clock.now(),
        state.config.lifetimes.backend_nonce,
    )?;
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    h.insert(
        "replay-nonce",
        HeaderValue::from_str(&nonce).map_err(|e| Error::Internal(e.to_string()))?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /clients/{device}/access-token`: verifies the device's proof, redeems its backend
/// nonce and answers `{"token", "type": "DPoP", "expires_in"}`. Nothing is issued on failure.
pub async fn access_token(
    State(state): State<SharedState>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let now = state.clock.now();
    let path = format!("/clients/{device_id}/access-token");
    let auth = authorized(&state, &headers, ProofUse::WireEndpoint)?;
    let device = device_of(&state, &auth, &device_id)?;
    let identity = proto::wire_id::WireIdentity::new(
        devices::client_id(&auth.user, &device)?,
        auth.user.handle_uri()?,
        &auth.user.name,
        auth.user.team.clone(),
    )
    .map_err(|e| Error::Internal(format!("the user's own identity: {e}")))?;

    let raw = single_dpop_header(headers.get_all("dpop").iter().map(|v| v.as_bytes()))
        .map_err(Error::WireProof)?;
    let htu = state.url(&path);
    let check = DpopCheck {
        htm: "POST",
        htu: &htu,
        nonce: NonceCheck::Present,
        access_token: None,
        wire: Some(WireExpectations {
            identity: &identity,
            challenge: None,
            audience: None,
        }),
    };
    let mut policy = DpopPolicy::wire().with_skew(state.config.clock_skew);
    policy.max_exp_ahead = Some(state.config.lifetimes.max_proof_exp);
    let proof = verify_dpop_proof(raw, &check, &policy, now).map_err(Error::WireProof)?;
    if let Some(jkt) = &auth.jkt
        && jkt != proof.thumbprint()
    {
        return Err(Error::WireProof(proto::Error::ProofKeyMismatch));
    }
    if url::Url::parse(&proof.wire().map(|w| w.aud.clone()).unwrap_or_default()).is_err() {
        return Err(Error::WireProof(proto::Error::InvalidUri("aud")));
    }
    // The proof's jti joins the replay cache and the nonce is redeemed, one flush making both
    // durable. A replayed proof fails on its spent nonce; a re-signed one with a fresh nonce
    // on its jti. A proof refused for its nonce leaves the cache as it was.
    let fresh_jti = crate::tokens::remember_jti(state.store(), &proof)?;
    let nonce = proof.nonce().unwrap_or_default();
    let redeemed = devices::redeem_nonce(state.store(), nonce, &auth.user, &device, now);
    if redeemed.is_err() && fresh_jti {
        crate::tokens::forget_jti(state.store(), &proof)?;
    }
    let _redeemed = redeemed?;
    if !fresh_jti {
        return Err(Error::WireProof(proto::Error::InvalidClaim("jti")));
    }
    // A deletion that raced this request removed the device after it was looked up: nothing is
    // issued for a device that no longer exists.
    device_of(&state, &auth, &device_id)?;
    let params = AccessTokenParams {
        issuer: &htu,
        lifetime: state.config.lifetimes.client_access_token,
        now,
    };
    let issued = issue_access_token(&state.key, &proof, &params)?;
    tracing::info!(user = %auth.user.id, device = %device.id, jti = %issued.jti, "client access token issued");
    state.audit.record(
        now,
        "token.issued",
        json!({"grant": "wire-client", "user": auth.user.id, "device": device.id,
               "jti": issued.jti, "jkt": proof.thumbprint()}),
    );
    let mut response =
        Json(json!({"token": issued.token, "type": "DPoP", "expires_in": issued.expires_in}))
            .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
