//! The device authorization grant's endpoints (RFC 8628): `POST /device_authorization` for the
//! device (only scopes registered for the client, `invalid_scope` otherwise), and the
//! verification page `/device` where the user types the code, signs in and approves or denies.
//!
//! The page lists what the client asks for once the code is known. A third-party client is
//! approved only from a page that showed exactly its requested scopes (or when the user
//! consented to them before), and the approval is remembered as consent, as at `/authorize`.

use std::collections::HashMap;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use proto::secret::SecretString;
use serde_json::json;

use super::SharedState;
use super::client_auth::authenticate_client;
use super::html::{escape, html_page};
use crate::device_grant::{self, Decision, DeviceGrant};
use crate::error::{Error, Result};

/// How long a device code lives, in seconds.
const DEVICE_CODE_TTL: i64 = 600;

/// `POST /device_authorization`.
pub async fn start(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    let client = authenticate_client(&state, &headers, &form)?;
    let requested = form.get("scope").map_or("openid", String::as_str);
    let scope = crate::scopes::grant(requested, &client.client, &state.config.device_access.scope)?;
    let now = state.clock.now();
    let (device_code, user_code) = device_grant::start(
        state.store(),
        &client.client.id,
        &scope,
        now,
        DEVICE_CODE_TTL,
    )?;
    let shown = device_grant::display(&user_code);
    let verification = state.url("/device");
    Ok(Json(json!({
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": verification,
        "verification_uri_complete": format!("{verification}?user_code={shown}"),
        "expires_in": DEVICE_CODE_TTL,
        "interval": device_grant::INTERVAL,
    }))
    .into_response())
}

/// The verification form; with `asks` (a pending authorization and the configured device
/// scope), what the client asks for, and its scope in a hidden field so the answer says which
/// scopes the user saw.
fn form_page(
    user_code: &str,
    asks: Option<(&DeviceGrant, &str)>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let (asks, shown) = asks.map_or_else(Default::default, |(grant, device_scope)| {
        (
            format!(
                "<p><strong>{}</strong> asks to:</p><ul>{}</ul>",
                escape(&grant.client_id),
                super::authorize::scope_items(&grant.scope, device_scope)
            ),
            format!(
                r#"<input type="hidden" name="scope" value="{}">"#,
                escape(&grant.scope)
            ),
        )
    });
    let body = format!(
        r#"<p>Enter the code shown on your device, sign in, and decide.</p>{error}{asks}
<form method="post" action="/device">{shown}
<label>Code <input name="user_code" value="{code}" autocomplete="off" required></label>
<label>Handle <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button></form>"#,
        code = escape(user_code)
    );
    html_page(status, "Connect a device", &body)
}

/// `GET /device[?user_code=...]`: the form, with what the client asks for when the code is
/// pending.
pub async fn page(
    State(state): State<SharedState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let user_code = query.get("user_code").map(String::as_str).unwrap_or("");
    let pending = if user_code.is_empty() {
        None
    } else {
        match device_grant::by_user_code(state.store(), user_code, state.clock.now()) {
            Ok(pending) => pending,
            Err(e) => return e.into_response(),
        }
    };
    let device_scope = state.config.device_access.scope.as_str();
    form_page(
        user_code,
        pending.as_ref().map(|(_, grant)| (grant, device_scope)),
        None,
        StatusCode::OK,
    )
}

/// Whether approving `grant` of a third-party (or no longer registered) client needs the user
/// to see its scopes first: the page did not show exactly these scopes, and the user has not
/// consented to them before.
fn needs_review(
    state: &SharedState,
    grant: &DeviceGrant,
    user_id: &str,
    shown: Option<&str>,
) -> crate::Result<bool> {
    if shown == Some(grant.scope.as_str()) {
        return Ok(false);
    }
    Ok(!crate::consents::covers(
        state.store(),
        user_id,
        &grant.client_id,
        &grant.scope,
    )?)
}

/// `POST /device`: the user's decision.
pub async fn decide(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    let user_code = form.remove("user_code").unwrap_or_default();
    let shown = form.remove("scope");
    let username = form.remove("username").unwrap_or_default();
    let password = SecretString::new(form.remove("password").unwrap_or_default());
    let approve = form.get("action").map(String::as_str) == Some("approve");
    let now = state.clock.now();
    let pending = match device_grant::by_user_code(state.store(), &user_code, now) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return form_page(
                &user_code,
                None,
                Some("Unknown or expired code."),
                StatusCode::BAD_REQUEST,
            );
        }
        Err(e) => return e.into_response(),
    };
    let login = state.check_password(peer.ip(), username, password).await;
    let user = match login {
        Ok(user) => user,
        Err(Error::BadCredentials) => {
            return form_page(
                &user_code,
                None,
                Some("Wrong handle or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => return e.into_response(),
    };
    let (grant_key, grant) = pending;
    let device_scope = state.config.device_access.scope.as_str();
    let first_party = match crate::users::client(state.store(), &grant.client_id) {
        Ok(client) => client.is_some_and(|c| c.is_first_party()),
        Err(e) => return e.into_response(),
    };
    if approve && !first_party {
        match needs_review(&state, &grant, &user.id, shown.as_deref()) {
            Ok(false) => {}
            Ok(true) => {
                return form_page(
                    &user_code,
                    Some((&grant, device_scope)),
                    Some("Check what the application asks for, then approve again."),
                    StatusCode::OK,
                );
            }
            Err(e) => return e.into_response(),
        }
    }
    let decision = if approve {
        Decision::Approved {
            user_id: user.id.clone(),
            auth_time: Some(now),
        }
    } else {
        Decision::Denied
    };
    match device_grant::decide(state.store(), &grant_key, decision) {
        Ok(true) => {
            // Remembered like a consent given at `/authorize`.
            if approve
                && !first_party
                && let Err(e) = crate::consents::grant(
                    state.store(),
                    &user.id,
                    &grant.client_id,
                    &grant.scope,
                    now,
                )
            {
                return e.into_response();
            }
            tracing::info!(client_id = %grant.client_id, user = %user.id, approve, "device authorization decided");
            let message = if approve {
                format!(
                    "<p>Done. <strong>{}</strong> is connected; you can close this page.</p>",
                    escape(&grant.client_id)
                )
            } else {
                "<p>Denied. The device gets no access.</p>".to_owned()
            };
            html_page(StatusCode::OK, "Connect a device", &message)
        }
        Ok(false) => form_page(
            &user_code,
            None,
            Some("This code was already used."),
            StatusCode::CONFLICT,
        ),
        Err(e) => e.into_response(),
    }
}
