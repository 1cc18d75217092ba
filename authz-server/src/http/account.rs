//! The account page (`/account`): a signed-in user (the browser's session, [`crate::sessions`])
//! sees the account, the ways to sign in to it — the password, the linked upstream identities
//! with a button to unlink each (not the last way in) and one to link each other upstream —
//! the account's sessions, each of which can be signed out, and the apps the user answered a
//! consent page for (what was shared and what withheld), each of which can be withdrawn. Without a session it is the
//! sign-in page ([`super::signin`]), whose password form posts to `/account/login`. Every form
//! of the page carries the session's form token ([`super::cookies::form_token`]).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use proto::secret::SecretString;

use super::SharedState;
use super::cookies::{FORM_TOKEN_FIELD, clear_session_cookie, form_token_matches};
use super::html::{error_alert, escape, html_page};
use super::signin::{
    RETURN_FIELD, hidden_input, local_page, login_page, new_session_then, signed_in, signin_page,
};
use super::upstream::{failure_page, to_upstream};
use crate::error::Error;
use crate::sessions::{Authentication, Method};
use crate::store::upstream_logins::Purpose;

/// Seconds after a login in which the account page may link another identity.
const RECENT_LOGIN_SECS: i64 = 600;

/// The account page, or the sign-in page without a session.
pub async fn page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok(Some((auth, token))) => account_page(&state, &auth, &token, None, StatusCode::OK),
        Ok(None) => signin_page(&state, "/account", None, StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

/// `POST /account/login`: the sign-in page's password form; back to the page it came from.
pub async fn login(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    if super::provenance::from_elsewhere(&headers, &state.base_url) {
        return super::provenance::refused();
    }
    let back = form
        .remove(RETURN_FIELD)
        .and_then(|p| local_page(&p))
        .unwrap_or_else(|| "/account".into());
    let username = form.remove("username").unwrap_or_default();
    let password = SecretString::new(form.remove("password").unwrap_or_default());
    match state.log_in(peer.ip(), username, password).await {
        Ok(user) => new_session_then(&state, &headers, user, &Method::Password, &back),
        Err(Error::BadCredentials) => signin_page(
            &state,
            &back,
            Some("Wrong handle or password."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(Error::PasswordLoginOff) => signin_page(
            &state,
            &back,
            Some(crate::error::PASSWORD_LOGIN_OFF),
            StatusCode::FORBIDDEN,
        ),
        Err(e @ Error::RateLimited { .. }) => failure_page(&e),
        Err(e) => e.into_response(),
    }
}

/// `POST /account/link`: links another upstream identity — off to the upstream, whose callback
/// links the identity it verifies to this account.
pub async fn link(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (auth, token) = match authorized_form(&state, &headers, &form) {
        Ok(signed_in) => signed_in,
        Err(response) => return *response,
    };
    if let Err(e) = state.limiters.upstream_login(peer.ip()) {
        return failure_page(&e);
    }
    let upstream = form.get("upstream").map(String::as_str).unwrap_or_default();
    // Linking gives the identity lasting access to the account: only soon after a login.
    if state.now() - auth.auth_time > RECENT_LOGIN_SECS {
        return signin_page(
            &state,
            "/account",
            Some("To link another account, sign in again first."),
            StatusCode::UNAUTHORIZED,
        );
    }
    let purpose = Purpose::Link {
        user_id: auth.user.id.clone(),
        session_id: auth.session_id.clone(),
    };
    match state
        .start_upstream_login(upstream, purpose, HashMap::new())
        .await
    {
        Ok(redirect) => to_upstream(&redirect),
        Err(e) => refused_change(&state, &auth, &token, &e, StatusCode::BAD_REQUEST),
    }
}

/// `POST /account/unlink`: unlinks an upstream identity (not the last way in).
pub async fn unlink(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (auth, token) = match authorized_form(&state, &headers, &form) {
        Ok(signed_in) => signed_in,
        Err(response) => return *response,
    };
    let upstream = form.get("upstream").map(String::as_str).unwrap_or_default();
    match state.unlink_upstream(&auth.user, upstream) {
        Ok(()) => Redirect::to("/account").into_response(),
        Err(e) => refused_change(&state, &auth, &token, &e, StatusCode::CONFLICT),
    }
}

/// `POST /account/sessions/revoke`: signs one of the account's sessions out (this browser's
/// own too, which then signs this browser out).
pub async fn revoke_session(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (auth, _) = match authorized_form(&state, &headers, &form) {
        Ok(signed_in) => signed_in,
        Err(response) => return *response,
    };
    let session = form.get("session").map(String::as_str).unwrap_or_default();
    if let Err(e) = state.revoke_session(&auth.user.id, session, "session.revoked") {
        return e.into_response();
    }
    let mut response = Redirect::to("/account").into_response();
    if auth.session_id.as_deref() == Some(session) {
        clear_session_cookie(&mut response);
    }
    response
}

/// `POST /account/consents/withdraw`: withdraws the consent of one app (its tokens stop working;
/// its next authorization asks again).
pub async fn withdraw_consent(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (auth, _) = match authorized_form(&state, &headers, &form) {
        Ok(signed_in) => signed_in,
        Err(response) => return *response,
    };
    let client = form.get("client").map(String::as_str).unwrap_or_default();
    match state.withdraw_consent(&auth.user.id, client) {
        Ok(_) => Redirect::to("/account").into_response(),
        Err(e) => e.into_response(),
    }
}

/// The account page again, saying why a change was refused.
fn refused_change(
    state: &SharedState,
    auth: &Authentication,
    token: &str,
    e: &Error,
    status: StatusCode,
) -> Response {
    let (_, description) = e.authorization_error();
    account_page(state, auth, token, Some(&description), status)
}

/// The signed-in user of a form of the account page: the session and the form's token.
fn authorized_form(
    state: &SharedState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(Authentication, String), Box<Response>> {
    if super::provenance::from_elsewhere(headers, &state.base_url) {
        return Err(Box::new(super::provenance::refused()));
    }
    let signed_in = signed_in(state, headers).map_err(|e| Box::new(e.into_response()))?;
    let Some(signed_in) = signed_in else {
        return Err(Box::new(signin_page(
            state,
            "/account",
            Some("Your session ended; sign in again."),
            StatusCode::UNAUTHORIZED,
        )));
    };
    if !form_token_matches(headers, form.get(FORM_TOKEN_FIELD).map(String::as_str)) {
        return Err(Box::new(html_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "<p>This form did not come from your account page. Open the account page and try again.</p>",
        )));
    }
    Ok(signed_in)
}

/// A form of the account page: `action`, with its token and `fields`, and a button.
fn account_form(action: &str, token: &str, fields: &[(&str, &str)], button: &str) -> String {
    let hidden: String = fields
        .iter()
        .map(|(name, value)| hidden_input(name, value))
        .chain(std::iter::once(hidden_input(FORM_TOKEN_FIELD, token)))
        .collect();
    format!(
        r#"<form method="post" action="{action}" class="inline">{hidden}<button type="submit">{}</button></form>"#,
        escape(button)
    )
}

/// The account page of the signed-in user `auth`.
fn account_page(
    state: &SharedState,
    auth: &Authentication,
    token: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let user = &auth.user;
    let links = match state.links_of(&user.id) {
        Ok(links) => links,
        Err(e) => return e.into_response(),
    };
    let sessions = match state.sessions_of(&user.id) {
        Ok(sessions) => sessions,
        Err(e) => return e.into_response(),
    };
    let consents = match state.consents_of(&user.id, None) {
        Ok(consents) => consents,
        Err(e) => return e.into_response(),
    };
    let password = if user.has_password() && state.local_login() {
        "<li>Password</li>".to_owned()
    } else {
        String::new()
    };
    let linked: String = links
        .iter()
        .map(|link| {
            format!(
                "<li>{} (linked {}; identity <code>{}</code>) {}</li>",
                escape(&state.upstream_name(&link.upstream)),
                escape(&proto::rfc3339::format(link.linked_at)),
                escape(&link.subject),
                account_form(
                    "/account/unlink",
                    token,
                    &[("upstream", &link.upstream)],
                    "Unlink"
                )
            )
        })
        .collect();
    let to_link: String = state
        .upstream_buttons()
        .into_iter()
        .filter(|(id, _)| !links.iter().any(|l| l.upstream == *id))
        .map(|(id, name)| {
            format!(
                "<li>{}</li>",
                account_form(
                    "/account/link",
                    token,
                    &[("upstream", &id)],
                    &format!("Link {name}")
                )
            )
        })
        .collect();
    let session_items: String = sessions
        .iter()
        .map(|s| {
            let this = if auth.session_id.as_deref() == Some(s.id.as_str()) {
                " <strong>(this browser)</strong>"
            } else {
                ""
            };
            let how = match &s.record.upstream {
                Some(upstream) => format!("through {}", escape(&state.upstream_name(upstream))),
                None => "with the password".to_owned(),
            };
            format!(
                "<li>Signed in {} {how}, last used {}{this}<br><small>{}</small> {}</li>",
                escape(&proto::rfc3339::format(s.record.auth_time)),
                escape(&proto::rfc3339::format(s.record.last_seen)),
                escape(&s.record.user_agent),
                account_form(
                    "/account/sessions/revoke",
                    token,
                    &[("session", &s.id)],
                    "Sign out"
                )
            )
        })
        .collect();
    let consent_items: String = consents
        .iter()
        .map(|c| {
            let withheld = if c.withheld.is_empty() {
                String::new()
            } else {
                format!("; withheld: {}", escape(&c.withheld.join(" ")))
            };
            format!(
                "<li><strong>{}</strong> (answered {}): shared {}{withheld} {}</li>",
                escape(&c.client_id),
                escape(&proto::rfc3339::format(c.granted_at)),
                escape(&c.scopes.join(" ")),
                account_form(
                    "/account/consents/withdraw",
                    token,
                    &[("client", &c.client_id)],
                    "Withdraw"
                )
            )
        })
        .collect();
    let apps = if consent_items.is_empty() {
        String::new()
    } else {
        format!(r#"<h2>Apps you allowed</h2><ul id="consents">{consent_items}</ul>"#)
    };
    let body = format!(
        r#"<p>Signed in as <strong>@{handle}</strong> ({name}).</p>{error}
<h2>Ways to sign in</h2><ul id="sign-in-methods">{password}{linked}</ul>
{link_more}
<h2>Sessions</h2><ul id="sessions">{session_items}</ul>
{apps}
<form method="post" action="/logout">{logout}<button type="submit">Sign out of this browser</button></form>"#,
        handle = escape(&user.handle),
        name = escape(&user.name),
        error = error_alert(error),
        link_more = if to_link.is_empty() {
            String::new()
        } else {
            format!(r#"<h2>Link another account</h2><ul id="link">{to_link}</ul>"#)
        },
        logout = hidden_input(FORM_TOKEN_FIELD, token),
    );
    login_page(state, status, "Your account", &body, None, None)
}
