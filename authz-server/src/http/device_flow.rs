//! The device authorization grant's endpoints (RFC 8628): `POST /device_authorization` for the
//! device, and the verification page `/device` where the user types the code, signs in and
//! approves or denies ([`crate::device_grant`]). The page lists what the client asks for once
//! the code is known.

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
use super::html::{error_alert, escape, html_page};
use crate::device_grant::{self, Answer, DeviceGrant};
use crate::error::{Error, Result};

/// `POST /device_authorization`.
pub async fn start(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    let client = authenticate_client(&state, &headers, &form)?;
    let requested = form.get("scope").map_or("openid", String::as_str);
    let started = state.start_device_authorization(&client, requested, state.now())?;
    let shown = device_grant::display(&started.user_code);
    let verification = state.url("/device");
    Ok(Json(json!({
        "device_code": started.device_code,
        "user_code": shown,
        "verification_uri": verification,
        "verification_uri_complete": format!("{verification}?user_code={shown}"),
        "expires_in": device_grant::DEVICE_CODE_TTL,
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
    let error = error_alert(error);
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
        match state.pending_device_authorization(user_code, state.now()) {
            Ok(pending) => pending,
            Err(e) => return e.into_response(),
        }
    };
    form_page(
        user_code,
        pending.as_ref().map(|p| (p.value(), state.device_scope())),
        None,
        StatusCode::OK,
    )
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
    let now = state.now();
    let pending = match state.pending_device_authorization(&user_code, now) {
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
    let user = match state.log_in(peer.ip(), username, password).await {
        Ok(user) => user,
        Err(Error::BadCredentials) => {
            return form_page(
                &user_code,
                None,
                Some("Wrong handle or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(Error::PasswordLoginOff) => {
            // Upstream logins are not offered on this page yet (docs/federation.md).
            return form_page(
                &user_code,
                None,
                Some(crate::error::PASSWORD_LOGIN_OFF),
                StatusCode::FORBIDDEN,
            );
        }
        Err(e) => return e.into_response(),
    };
    let grant = pending.value();
    match state.answer_device_authorization(&pending, &user, approve, shown.as_deref(), now) {
        Ok(Answer::Decided) => {
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
        Ok(Answer::NeedsReview) => form_page(
            &user_code,
            Some((grant, state.device_scope())),
            Some("Check what the application asks for, then approve again."),
            StatusCode::OK,
        ),
        Ok(Answer::AlreadyDecided) => form_page(
            &user_code,
            None,
            Some("This code was already used."),
            StatusCode::CONFLICT,
        ),
        Err(e) => e.into_response(),
    }
}
