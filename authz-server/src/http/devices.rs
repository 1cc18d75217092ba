//! The Wire device endpoints — Wire's API names devices "clients", so the paths are
//! `/clients…`: register, list and delete a user's devices, hand out backend nonces, and
//! exchange a device's DPoP proof for a Wire access token (DESIGN §4 steps 3–5), each a call to
//! the device service ([`crate::devices`]).
//!
//! Each of them first checks who calls (`[device_access]`): a valid access token of the user
//! with the device scope, issued to a client that is still allowed that scope and — unless
//! configured otherwise — first-party; anything else is 403 `insufficient_scope`. Then the
//! device must be the caller's own (404 otherwise).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::SharedState;
use crate::devices::Device;
use crate::error::{Error, Result};
use crate::tokens::resource::{AuthenticatedUser, ProofUse, Requirement};
use crate::users::User;

/// What the device endpoints ask of the caller's token (`[device_access]`).
fn requirement(state: &SharedState) -> Requirement<'_> {
    let access = &state.config.device_access;
    Requirement {
        scope: &access.scope,
        first_party: access.first_party_only,
        what: "the device endpoints",
        role: None,
    }
}

/// Authenticates a request to a device endpoint at `path` and checks the caller may use the
/// device endpoints at all.
fn caller(
    state: &SharedState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
) -> Result<AuthenticatedUser> {
    super::access::authorized_at(state, headers, method, path, requirement(state))
}

/// A device as the endpoints show it.
fn rendered(user: &User, device: &Device) -> Result<serde_json::Value> {
    let client_id = crate::identity::device_client_id(user, device)?;
    Ok(json!({"id": device.id, "client_id": client_id.to_uri(), "label": device.label}))
}

/// A `200` answer that must not be cached.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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
    let caller = caller(&state, &headers, &method, "/clients")?;
    let label = body.and_then(|Json(b)| b.label);
    let device = state.register_device(&caller.user, label)?;
    Ok((StatusCode::CREATED, Json(rendered(&caller.user, &device)?)).into_response())
}

/// `GET /clients`: the user's devices.
pub async fn list(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let caller = caller(&state, &headers, &method, "/clients")?;
    let items: Result<Vec<_>> = state
        .devices_of(&caller.user)?
        .iter()
        .map(|d| {
            let mut item = rendered(&caller.user, d)?;
            item["created_at"] = d.created_at.into();
            Ok(item)
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
    let caller = caller(&state, &headers, &method, &format!("/clients/{device_id}"))?;
    state.remove_device(&caller.user, &device_id, &caller.client_id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `HEAD`/`GET /clients/{device}/nonce`: a fresh single-use backend nonce in `Replay-Nonce`.
pub async fn nonce(
    State(state): State<SharedState>,
    Path(device_id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let path = format!("/clients/{device_id}/nonce");
    let caller = caller(&state, &headers, &method, &path)?;
    let nonce = state.issue_backend_nonce(&caller.user, &device_id)?;
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(
        "replay-nonce",
        HeaderValue::from_str(&nonce).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(no_store(response))
}

/// `POST /clients/{device}/access-token`: the device's proof (its `DPoP` header) for
/// `{"token", "type": "DPoP", "expires_in"}`. Nothing is issued on failure.
pub async fn access_token(
    State(state): State<SharedState>,
    Path(device_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let caller = super::access::authorized(
        &state,
        &headers,
        ProofUse::WireEndpoint,
        requirement(&state),
    )?;
    let issued = state.wire_access_token(&caller, &device_id, &super::dpop_headers(&headers))?;
    let body = json!({"token": issued.token, "type": "DPoP", "expires_in": issued.expires_in});
    Ok(no_store(Json(body).into_response()))
}
