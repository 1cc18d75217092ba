//! Signing in on this server's own pages: the "Sign in with …" buttons every login page
//! carries (the login page of `/authorize`, the device page, the account page), the sign-in
//! page of pages that need a signed-in user, and the redirect that ends a login made for such
//! a page (a new session, then back to the page).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::SharedState;
use super::cookies::{session_cookie, set_session_cookie, user_agent};
use super::html::{error_alert, escape, page_with_form_targets};
use crate::sessions::{Authentication, Method};
use crate::store::users::User;

/// The form field naming the page of ours a login through an upstream goes back to.
pub(super) const RETURN_FIELD: &str = "return_to";

/// The "Sign in with …" forms, each posting `hidden` (already-rendered hidden fields), the
/// upstream's id and the page's login token, and that token (to set in the page's cookie with
/// [`super::upstream::set_login_csrf_cookie`]); nothing without upstreams.
pub(super) fn upstream_buttons(state: &SharedState, hidden: &str) -> (String, Option<String>) {
    let buttons = state.upstream_buttons();
    // An upstream login starts only from a page of ours: each button posts a token that must
    // match a `SameSite=Strict` cookie set with the page (see `super::upstream::start`).
    let token = (!buttons.is_empty()).then(|| proto::random::token(128));
    let forms = buttons
        .into_iter()
        .map(|(id, display_name)| {
            format!(
                r#"<form method="post" action="/upstream/start">{hidden}{}{}<button type="submit" class="upstream">Sign in with {}</button></form>"#,
                hidden_input("upstream", &id),
                hidden_input(super::upstream::CSRF_FIELD, token.as_deref().unwrap_or_default()),
                escape(&display_name)
            )
        })
        .collect();
    (forms, token)
}

/// A page whose forms sign the user in (to `redirect_uri`, if a client waits): the upstreams'
/// authorization endpoints and the client's redirect URI are allowed form targets, and the
/// page's login token is set in its cookie.
pub(super) fn login_page(
    state: &SharedState,
    status: StatusCode,
    title: &str,
    body: &str,
    redirect_uri: Option<&str>,
    login_token: Option<&str>,
) -> Response {
    let upstreams = state.upstreams.authorization_targets();
    let mut targets: Vec<&str> = upstreams.iter().map(String::as_str).collect();
    targets.extend(redirect_uri);
    let mut page = page_with_form_targets(status, title, body, &targets);
    if let Some(token) = login_token {
        super::upstream::set_login_csrf_cookie(&mut page, token);
    }
    page
}

/// The sign-in page of a page of ours (`path`) that needs a signed-in user: the password form
/// (unless `local_login = false`) and the upstreams' buttons, each going back to `path`.
pub(super) fn signin_page(
    state: &SharedState,
    path: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let back = hidden_input(RETURN_FIELD, path);
    let password_form = if state.local_login() {
        format!(
            r#"<form method="post" action="/account/login">{back}
<label>Handle <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>"#
        )
    } else {
        String::new()
    };
    let (buttons, token) = upstream_buttons(state, &back);
    let body = format!(
        "<p>Sign in to continue.</p>{}{password_form}{buttons}",
        error_alert(error)
    );
    login_page(state, status, "Sign in", &body, None, token.as_deref())
}

/// A login by `method` made for the page `path`: a new session (ending the browser's old one),
/// then back to the page.
pub(super) fn new_session_then(
    state: &SharedState,
    headers: &HeaderMap,
    user: User,
    method: &Method,
    path: &str,
) -> Response {
    let started = state.start_session(user, method, user_agent(headers), session_cookie(headers));
    match started {
        Ok((_, cookie)) => {
            let mut response = Redirect::to(path).into_response();
            if let Some(cookie) = cookie {
                set_session_cookie(&mut response, &cookie, state.config.sessions.absolute_secs);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The signed-in user of the request's session, with the form token of its pages.
pub(super) fn signed_in(
    state: &SharedState,
    headers: &HeaderMap,
) -> crate::error::Result<Option<(Authentication, String)>> {
    let Some(cookie) = session_cookie(headers) else {
        return Ok(None);
    };
    Ok(state
        .session(Some(cookie))?
        .map(|auth| (auth, super::cookies::form_token(cookie))))
}

/// `path` if it is a page of ours a login may go back to: `/account`, or `/device` with at
/// most a `user_code`.
pub(super) fn local_page(path: &str) -> Option<String> {
    let (page, query) = path.split_once('?').unwrap_or((path, ""));
    let fine = match (page, query) {
        ("/account", "") | ("/device", "") => true,
        ("/device", query) => query.strip_prefix("user_code=").is_some_and(|code| {
            (1..=16).contains(&code.len())
                && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }),
        _ => false,
    };
    fine.then(|| path.to_owned())
}

/// A hidden form field, escaped.
pub(super) fn hidden_input(name: &str, value: &str) -> String {
    format!(
        r#"<input type="hidden" name="{}" value="{}">"#,
        escape(name),
        escape(value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_pages_are_places_to_go_back_to() {
        for good in ["/account", "/device", "/device?user_code=ABCD-EFGH"] {
            assert_eq!(local_page(good).as_deref(), Some(good));
        }
        for bad in [
            "//evil.example/account",
            "https://evil.example/",
            "/account?x=1",
            "/device?user_code=<script>",
            "/device?next=/x",
            "/authorize",
            "",
        ] {
            assert_eq!(local_page(bad), None, "{bad}");
        }
    }
}
