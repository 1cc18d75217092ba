//! The admin surface for asserted visas (GA4GH Passports, [`crate::passports::asserted`]):
//! `GET /admin/users/{handle}/visas` lists a user's, `POST` adds one (201, the visa with its
//! id), `DELETE /admin/users/{handle}/visas/{id}` removes one (204). The same callers as the
//! rest of the admin surface ([`super::admin`]): a first-party client's token with the `roles`
//! scope and the `admin` role, the role still held now. Audited: `user.visa_added`,
//! `user.visa_removed` (the user, the visa's id and type, and the admin).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::SharedState;
use super::admin::REQUIREMENT;
use crate::error::{Error, Result};
use crate::passports::asserted::{self, Assertion};

fn no_user(handle: &str) -> Error {
    Error::not_found("no-user", format!("no user {handle}"))
}

/// `GET /admin/users/{handle}/visas`.
pub async fn list(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Result<Json<Value>> {
    let path = format!("/admin/users/{handle}/visas");
    super::access::authorized_at(&state, &headers, &method, &path, REQUIREMENT)?;
    let visas = asserted::list(state.store(), &handle)?.ok_or_else(|| no_user(&handle))?;
    Ok(Json(asserted::listing(&visas)))
}

/// `POST /admin/users/{handle}/visas`: the caller is checked before its body is read.
pub async fn add(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
    Path(handle): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let path = format!("/admin/users/{handle}/visas");
    let caller = super::access::authorized_at(&state, &headers, &method, &path, REQUIREMENT)?;
    let assertion: Assertion = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid_request(format!("the body: {e}")))?;
    let visa = asserted::add(
        state.store(),
        &handle,
        assertion,
        &caller.user.id,
        state.now(),
        state.config.clock_skew,
    )?
    .ok_or_else(|| no_user(&handle))?;
    state.audit.record(
        state.now(),
        "user.visa_added",
        json!({"user": visa.user_id, "handle": handle, "visa": visa.id,
               "type": visa.visa_type, "by": caller.user.id}),
    );
    Ok((StatusCode::CREATED, Json(visa.to_json())))
}

/// `DELETE /admin/users/{handle}/visas/{id}`.
pub async fn remove(
    State(state): State<SharedState>,
    method: Method,
    headers: HeaderMap,
    Path((handle, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let path = format!("/admin/users/{handle}/visas/{id}");
    let caller = super::access::authorized_at(&state, &headers, &method, &path, REQUIREMENT)?;
    match asserted::remove(state.store(), &handle, &id)? {
        None => Err(no_user(&handle)),
        Some(false) => Err(Error::not_found(
            "no-visa",
            format!("{handle} has no visa {id}"),
        )),
        Some(true) => {
            state.audit.record(
                state.now(),
                "user.visa_removed",
                json!({"handle": handle, "visa": id, "by": caller.user.id}),
            );
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
