//! The device authorization grant's endpoints (RFC 8628): `POST /device_authorization` for the
//! device, and the verification page `/device` where the user types the code, signs in and
//! approves or denies.

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
use crate::device_grant::{self, Decision};
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
    let scope = form
        .get("scope")
        .cloned()
        .unwrap_or_else(|| "openid".into());
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

fn form_page(user_code: &str, error: Option<&str>, status: StatusCode) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<p>Enter the code shown on your device, sign in, and decide.</p>{error}
<form method="post" action="/device">
<label>Code <input name="user_code" value="{code}" autocomplete="off" required></label>
<label>Handle <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button></form>"#,
        code = escape(user_code)
    );
    html_page(status, "Connect a device", &body)
}

/// `GET /device[?user_code=...]`.
pub async fn page(Query(query): Query<HashMap<String, String>>) -> Response {
    form_page(
        query.get("user_code").map(String::as_str).unwrap_or(""),
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
    let username = form.remove("username").unwrap_or_default();
    let password = SecretString::new(form.remove("password").unwrap_or_default());
    let approve = form.get("action").map(String::as_str) == Some("approve");
    let now = state.clock.now();
    let pending = match device_grant::by_user_code(state.store(), &user_code, now) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return form_page(
                &user_code,
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
                Some("Wrong handle or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => return e.into_response(),
    };
    let (grant_key, grant) = pending;
    let decision = if approve {
        Decision::Approved {
            user_id: user.id.clone(),
        }
    } else {
        Decision::Denied
    };
    match device_grant::decide(state.store(), &grant_key, decision) {
        Ok(true) => {
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
            Some("This code was already used."),
            StatusCode::CONFLICT,
        ),
        Err(e) => e.into_response(),
    }
}
