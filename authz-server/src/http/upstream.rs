//! Login through an upstream identity provider, the browser's side: `POST /upstream/start` (a
//! "Sign in with …" button of one of our login pages: the upstream's id, the page's token,
//! which must match its `SameSite=Strict` cookie, and either the authorization request's
//! parameters or the page of ours to go back to) sends the browser to the upstream with a fresh
//! `state`, also set in an owner-only cookie (`__Host-`, `Secure`, `HttpOnly`, `SameSite=Lax`)
//! that binds the login to this browser; `GET /upstream/callback` takes that login once and goes
//! on by its purpose: as after a password login at `/authorize`, back to the page of ours with a
//! new session, or — started from the account page — back to the account page with the
//! identity linked. An identity to be linked first (`first_login = "link"`) gets the link page,
//! whose login `POST /upstream/link` links it and goes on. A callback that cannot be tied to a
//! waiting request gets an error page; a failure of a login for a client goes back to the
//! client as an RFC 6749 §4.1.2.1 error redirect.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use proto::secret::SecretString;

use super::SharedState;
use super::authorize::{after_new_login, error_response, validate};
use super::cookies::{cookie, set_cookie};
use super::html::{error_alert, escape, html_page, html_page_redirecting, set_retry_after};
use super::signin::{RETURN_FIELD, local_page, new_session_then};
use crate::error::Error;
use crate::federation::login::{CallbackAnswer, LOGIN_TTL, UpstreamOutcome, UpstreamRedirect};
use crate::sessions::Method;
use crate::store::upstream_link_tickets::PendingLink;
use crate::store::upstream_logins::Purpose;
use crate::store::users::User;

/// The cookie holding the `state` of this browser's upstream login.
const STATE_COOKIE: &str = "__Host-upstream-state";

/// The cookie set with a login page, whose value the page's upstream buttons post.
const LOGIN_CSRF_COOKIE: &str = "__Host-login-csrf";

/// The form field carrying the login page's token.
pub(super) const CSRF_FIELD: &str = "login_csrf";

/// The fields of the start form that are not the authorization request's.
pub(super) const START_FIELDS: [&str; 3] = ["upstream", CSRF_FIELD, RETURN_FIELD];

/// Sets the login page's token cookie: `SameSite=Strict`, so a form posted from another site
/// never carries it, and `HttpOnly`, so no script reads it.
pub(super) fn set_login_csrf_cookie(response: &mut Response, token: &str) {
    set_cookie(response, LOGIN_CSRF_COOKIE, token, LOGIN_TTL, "Strict");
}

/// `POST /upstream/start` (a button of one of our login pages): to the upstream's
/// authorization endpoint. Only a post that carries the page's token, matching the page's
/// cookie, is taken: another site can send a browser here, but not with the token, so no login
/// through an upstream (where the user may already be signed in) starts without a click on our
/// page.
pub async fn start(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(mut params): Form<HashMap<String, String>>,
) -> Response {
    let posted = params.remove(CSRF_FIELD).unwrap_or_default();
    let from_our_page = cookie(&headers, LOGIN_CSRF_COOKIE).is_some_and(|token| {
        !posted.is_empty() && proto::secret::constant_time_eq(token.as_bytes(), posted.as_bytes())
    });
    if !from_our_page {
        return html_page(
            StatusCode::FORBIDDEN,
            "Login failed",
            "<p>This sign-in did not come from this server's login page. Go back to the application and start again.</p>",
        );
    }
    if let Err(e) = state.limiters.upstream_login(peer.ip()) {
        return failure_page(&e);
    }
    let upstream = params.remove("upstream").unwrap_or_default();
    if let Some(path) = params.remove(RETURN_FIELD) {
        let Some(path) = local_page(&path) else {
            return failure_page(&Error::invalid_request(
                "return_to is not a page of this server",
            ));
        };
        let purpose = Purpose::Page { path };
        return match state
            .start_upstream_login(&upstream, purpose, HashMap::new())
            .await
        {
            Ok(redirect) => to_upstream(&redirect),
            Err(e) => failure_page(&e),
        };
    }
    let req = match validate(&state, params) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    match state
        .start_upstream_login(&upstream, Purpose::Authorize, req.params.clone())
        .await
    {
        Ok(redirect) => to_upstream(&redirect),
        Err(e) => error_response(&state, &req, &e),
    }
}

/// The redirect to an upstream, with the login's `state` in this browser's cookie.
pub(super) fn to_upstream(redirect: &UpstreamRedirect) -> Response {
    let mut response = Redirect::to(&redirect.location).into_response();
    set_state_cookie(&mut response, &redirect.state, LOGIN_TTL);
    response
}

/// `GET /upstream/callback`: the upstream's answer.
pub async fn callback(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(answer): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| answer.get(name).map(String::as_str);
    let login = match state.take_upstream_login(field("state"), state_cookie(&headers)) {
        Ok(login) => login,
        Err(e) => return failure_page(&e),
    };
    let answer = CallbackAnswer {
        code: field("code"),
        error: field("error"),
        iss: field("iss"),
    };
    let mut response = match &login.purpose {
        Purpose::Authorize => match validate(&state, login.params.clone()) {
            Err(refusal) => refusal.into_response(),
            Ok(req) => match state.finish_upstream_login(&login, answer).await {
                Ok(UpstreamOutcome::LoggedIn { user, auth_time }) => {
                    let method = Method::Upstream(login.upstream.clone(), auth_time);
                    after_new_login(&state, &headers, &req, user, &method)
                }
                Ok(UpstreamOutcome::LinkNeeded {
                    ticket,
                    upstream_name,
                }) => return link_needed(&ticket, &upstream_name, &req.redirect_uri),
                Err(e) => error_response(&state, &req, &e),
            },
        },
        Purpose::Page { path } => match state.finish_upstream_login(&login, answer).await {
            Ok(UpstreamOutcome::LoggedIn { user, auth_time }) => {
                let method = Method::Upstream(login.upstream.clone(), auth_time);
                new_session_then(&state, &headers, user, &method, path)
            }
            Ok(UpstreamOutcome::LinkNeeded {
                ticket,
                upstream_name,
            }) => return link_needed(&ticket, &upstream_name, ""),
            Err(e) => failure_page(&e),
        },
        Purpose::Link { .. } => match state.finish_upstream_login(&login, answer).await {
            Ok(_) => Redirect::to("/account").into_response(),
            Err(e) => failure_page(&e),
        },
    };
    set_state_cookie(&mut response, "", 0);
    response
}

/// The link page of an identity waiting under `ticket`, with the ticket in the browser's
/// cookie.
fn link_needed(ticket: &str, upstream_name: &str, redirect_uri: &str) -> Response {
    let mut page = link_page(ticket, upstream_name, redirect_uri, None, StatusCode::OK);
    set_state_cookie(&mut page, ticket, LOGIN_TTL);
    page
}

/// The page asking the user to log in to the account to link the upstream identity to.
fn link_page(
    ticket: &str,
    upstream_name: &str,
    redirect_uri: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let error = error_alert(error);
    let body = format!(
        r#"<p>No account here is linked to your {name} identity yet. Sign in to your account to link it; from then on, {name} signs you in to that account.</p>{error}
<form method="post" action="/upstream/link"><input type="hidden" name="ticket" value="{ticket}">
<label>Handle <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in and link</button></form>"#,
        name = escape(upstream_name),
        ticket = escape(ticket),
    );
    html_page_redirecting(status, "Link your account", &body, redirect_uri)
}

/// `POST /upstream/link`: the link page's login; links the identity and goes on with what
/// the login was for.
pub async fn link(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    if super::provenance::from_elsewhere(&headers, &state.base_url) {
        return super::provenance::refused();
    }
    let ticket = form.remove("ticket");
    let username = form.remove("username").unwrap_or_default();
    let password = SecretString::new(form.remove("password").unwrap_or_default());
    let browser = state_cookie(&headers);
    let outcome = state
        .link_upstream(peer.ip(), ticket.as_deref(), browser, username, password)
        .await;
    let (pending, user) = match outcome {
        Ok(done) => done,
        Err(e @ (Error::BadCredentials | Error::RateLimited { .. })) => {
            let Ok(pending) = state.pending_link(ticket.as_deref(), browser) else {
                return failure_page(&e);
            };
            let (message, status) = match e {
                Error::RateLimited { description, .. } => (
                    format!("Not now: {description}."),
                    StatusCode::TOO_MANY_REQUESTS,
                ),
                _ => (
                    "Wrong handle or password.".to_owned(),
                    StatusCode::UNAUTHORIZED,
                ),
            };
            return link_page(
                ticket.as_deref().unwrap_or_default(),
                &state.upstream_name(&pending.upstream),
                pending
                    .params
                    .get("redirect_uri")
                    .map_or("", String::as_str),
                Some(&message),
                status,
            );
        }
        Err(e) => return failure_page(&e),
    };
    let mut response = after_link(&state, &headers, pending, user);
    set_state_cookie(&mut response, "", 0);
    response
}

/// What follows the link of `pending` to `user`'s account, by what the login was for.
fn after_link(
    state: &SharedState,
    headers: &HeaderMap,
    pending: PendingLink,
    user: User,
) -> Response {
    let method = Method::UpstreamThenPassword(pending.upstream.clone());
    match pending.purpose {
        Purpose::Authorize => match validate(state, pending.params) {
            Ok(req) => after_new_login(state, headers, &req, user, &method),
            Err(refusal) => refusal.into_response(),
        },
        Purpose::Page { path } => new_session_then(state, headers, user, &method, &path),
        // A link made from the account page never waits for a password.
        Purpose::Link { .. } => Redirect::to("/account").into_response(),
    }
}

/// The page of a login through an upstream that cannot go back to a client.
pub(super) fn failure_page(e: &Error) -> Response {
    let (_, description) = e.authorization_error();
    let status = match e {
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut page = html_page(
        status,
        "Login failed",
        &format!("<p>{}</p>", escape(&description)),
    );
    if let Error::RateLimited {
        retry_after_secs, ..
    } = e
    {
        set_retry_after(&mut page, *retry_after_secs);
    }
    page
}

/// Sets (or with `max_age` 0 clears) the state cookie.
fn set_state_cookie(response: &mut Response, value: &str, max_age: i64) {
    set_cookie(response, STATE_COOKIE, value, max_age, "Lax");
}

/// The state in the request's cookie, if any.
fn state_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, STATE_COOKIE)
}
