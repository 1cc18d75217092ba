//! The device authorization grant's endpoints (RFC 8628): `POST /device_authorization` for the
//! device, and the verification page `/device` where the user types the code, signs in and
//! approves or denies ([`crate::device_grant`]). The page lists what the client asks for once
//! the code is known. A browser signed in here (its session) is not asked for a password; one
//! that is not can sign in with the password form or through an upstream, which comes back
//! to the page with a session.

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
use super::cookies::{
    FORM_TOKEN_FIELD, form_token, form_token_matches, session_cookie, set_session_cookie,
    user_agent,
};
use super::html::{error_alert, escape, html_page};
use super::signin::{
    RETURN_FIELD, hidden_input, local_page, login_page, signed_in, upstream_buttons,
};
use crate::device_grant::{self, Answer, DeviceGrant};
use crate::error::{Error, Result};
use crate::sessions::Method;

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
/// scopes the user saw. Signed in (`signed_in`: the user's handle and the session's form
/// token), the form asks for no password; otherwise it has the password form (unless
/// `local_login = false`) and the upstreams' buttons, which come back here.
fn form_page(
    state: &SharedState,
    user_code: &str,
    signed_in: Option<(&str, String)>,
    asks: Option<&DeviceGrant>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let error = error_alert(error);
    let (asks, shown) = asks.map_or_else(Default::default, |grant| {
        (
            format!(
                "<p><strong>{}</strong> asks to:</p><ul>{}</ul>",
                escape(&grant.client_id),
                super::authorize::scope_items(&grant.scope, state.device_scope())
            ),
            hidden_input("scope", &grant.scope),
        )
    });
    let code = format!(
        r#"<label>Code <input name="user_code" value="{}" autocomplete="off" required></label>"#,
        escape(user_code)
    );
    let decide = r#"<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button></form>"#;
    let (body, token) = match signed_in {
        Some((handle, form_token)) => (
            format!(
                r#"<p>Enter the code shown on your device and decide. Signed in as <strong>@{handle}</strong> (<a href="/account">not you?</a>).</p>{error}{asks}
<form method="post" action="/device">{shown}{}{code}{decide}"#,
                hidden_input(FORM_TOKEN_FIELD, &form_token),
                handle = escape(handle),
            ),
            None,
        ),
        None => {
            let credentials = if state.local_login() {
                r#"<label>Handle <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>"#
            } else {
                ""
            };
            let back = if user_code.is_empty() {
                "/device".to_owned()
            } else {
                format!("/device?user_code={user_code}")
            };
            let back = local_page(&back).unwrap_or_else(|| "/device".into());
            let (buttons, token) = upstream_buttons(state, &hidden_input(RETURN_FIELD, &back));
            let password_form = if state.local_login() {
                format!(
                    r#"<form method="post" action="/device">{shown}{code}{credentials}{decide}"#
                )
            } else {
                String::new()
            };
            let lead = if state.local_login() {
                "Enter the code shown on your device, sign in, and decide."
            } else {
                "Sign in, then enter the code shown on your device and decide."
            };
            (
                format!("<p>{lead}</p>{error}{asks}{password_form}{buttons}"),
                token,
            )
        }
    };
    login_page(
        state,
        status,
        "Connect a device",
        &body,
        None,
        token.as_deref(),
    )
}

/// `GET /device[?user_code=...]`: the form, with what the client asks for when the code is
/// pending.
pub async fn page(
    State(state): State<SharedState>,
    headers: HeaderMap,
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
    let session = signed_in(&state, &headers).ok().flatten();
    form_page(
        &state,
        user_code,
        session
            .as_ref()
            .map(|(a, t)| (a.user.handle.as_str(), t.clone())),
        pending.as_ref().map(|p| p.value()),
        None,
        StatusCode::OK,
    )
}

/// `POST /device`: the user's decision, signed in by the session (with its form token) or by
/// the password in the form (which starts a session).
pub async fn decide(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    if super::provenance::from_elsewhere(&headers, &state.base_url) {
        return super::provenance::refused();
    }
    let user_code = form.remove("user_code").unwrap_or_default();
    let shown = form.remove("scope");
    let approve = form.get("action").map(String::as_str) == Some("approve");
    let now = state.now();
    let session = signed_in(&state, &headers)
        .ok()
        .flatten()
        .filter(|_| form_token_matches(&headers, form.get(FORM_TOKEN_FIELD).map(String::as_str)));
    let shown_user = session
        .as_ref()
        .map(|(a, t)| (a.user.handle.clone(), t.clone()));
    let page = |asks: Option<&DeviceGrant>, error: &str, status: StatusCode| {
        form_page(
            &state,
            &user_code,
            shown_user.as_ref().map(|(h, t)| (h.as_str(), t.clone())),
            asks,
            Some(error),
            status,
        )
    };
    let pending = match state.pending_device_authorization(&user_code, now) {
        Ok(Some(p)) => p,
        Ok(None) => return page(None, "Unknown or expired code.", StatusCode::BAD_REQUEST),
        Err(e) => return e.into_response(),
    };
    let (auth, new_cookie, token) = match session {
        Some((auth, token)) => (auth, None, Some(token)),
        None => {
            let username = form.remove("username").unwrap_or_default();
            let password = SecretString::new(form.remove("password").unwrap_or_default());
            let user = match state.log_in(peer.ip(), username, password).await {
                Ok(user) => user,
                Err(Error::BadCredentials) => {
                    return page(None, "Wrong handle or password.", StatusCode::UNAUTHORIZED);
                }
                Err(Error::PasswordLoginOff) => {
                    return page(
                        None,
                        crate::error::PASSWORD_LOGIN_OFF,
                        StatusCode::FORBIDDEN,
                    );
                }
                Err(e) => return e.into_response(),
            };
            match state.start_session(
                user,
                &Method::Password,
                user_agent(&headers),
                session_cookie(&headers),
            ) {
                Ok((auth, cookie)) => {
                    let token = cookie.as_ref().map(|c| form_token(c.expose()));
                    (auth, cookie, token)
                }
                Err(e) => return e.into_response(),
            }
        }
    };
    let grant = pending.value();
    let mut response =
        match state.answer_device_authorization(&pending, &auth, approve, shown.as_deref(), now) {
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
            // The review page of the signed-in user (a password login made a session just now).
            Ok(Answer::NeedsReview) => form_page(
                &state,
                &user_code,
                token.map(|t| (auth.user.handle.as_str(), t)),
                Some(grant),
                Some("Check what the application asks for, then approve again."),
                StatusCode::OK,
            ),
            Ok(Answer::AlreadyDecided) => {
                page(None, "This code was already used.", StatusCode::CONFLICT)
            }
            Err(e) => e.into_response(),
        };
    if let Some(cookie) = new_cookie {
        set_session_cookie(&mut response, &cookie, state.config.sessions.absolute_secs);
    }
    response
}
