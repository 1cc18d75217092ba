//! The cookies of the browser pages, all `__Host-` (the whole site, `Secure`, no `Domain`) and
//! `HttpOnly`: the session (`SameSite=Lax`, so a client's top-level redirect to `/authorize`
//! carries it and a form posted from another site does not), the upstream login's `state`
//! (`Lax`, the upstream redirects back) and the login page's token (`Strict`). Forms of a
//! signed-in page carry a token derived from the session cookie, which another site cannot
//! read ([`form_token`]).

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

use crate::sessions::SessionCookie;

/// The session cookie.
const SESSION_COOKIE: &str = "__Host-session";

/// The form field carrying a signed-in page's [`form_token`].
pub(super) const FORM_TOKEN_FIELD: &str = "csrf";

/// Sets a `__Host-` cookie: the whole site, `Secure`, `HttpOnly`, the given `SameSite`; with
/// `max_age` 0 it is cleared.
pub(super) fn set_cookie(
    response: &mut Response,
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
) {
    let cookie = format!(
        "{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite={same_site}"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The value of the cookie `wanted` in the request, if any.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, wanted: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
}

/// The session cookie of the request, if any.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// Sets the cookie of a session just started, for `max_age` seconds (its absolute lifetime).
pub(super) fn set_session_cookie(response: &mut Response, session: &SessionCookie, max_age: i64) {
    set_cookie(response, SESSION_COOKIE, session.expose(), max_age, "Lax");
}

/// Clears the session cookie.
pub(super) fn clear_session_cookie(response: &mut Response) {
    set_cookie(response, SESSION_COOKIE, "", 0, "Lax");
}

/// The token the forms of a page signed in with `session_cookie` carry: a digest of the cookie
/// (which no other site can read), so a form posted from elsewhere cannot act in the session.
pub(super) fn form_token(session_cookie: &str) -> String {
    proto::b64::encode(Sha256::digest(
        format!("form-token.{session_cookie}").as_bytes(),
    ))
}

/// Whether `posted` is the form token of the request's session cookie.
pub(super) fn form_token_matches(headers: &HeaderMap, posted: Option<&str>) -> bool {
    match (session_cookie(headers), posted) {
        (Some(cookie), Some(posted)) => {
            proto::secret::constant_time_eq(form_token(cookie).as_bytes(), posted.as_bytes())
        }
        _ => false,
    }
}

/// The request's `User-Agent`, or nothing.
pub(super) fn user_agent(headers: &HeaderMap) -> &str {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
