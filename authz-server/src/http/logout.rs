//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), the `end_session_endpoint`:
//! `GET /logout` with an optional `id_token_hint` (one of our ID tokens, expired or not),
//! `client_id`, `post_logout_redirect_uri` (registered for that client, exact match) and
//! `state`. A hint naming the browser's signed-in user (and its session, by `sid`) ends the
//! session at once; otherwise the user confirms on a page (`POST /logout` with the session's
//! form token, which the account page's "Sign out" button posts too), so another site cannot
//! sign a user out. Afterwards the browser goes to the `post_logout_redirect_uri` with `state`,
//! or sees a signed-out page. An unregistered redirect URI or a bad hint is an error page,
//! never a redirect.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::SharedState;
use super::cookies::{FORM_TOKEN_FIELD, clear_session_cookie, form_token, session_cookie};
use super::html::{escape, html_page, html_page_redirecting};
use super::signin::hidden_input;
use crate::tokens::id_token::{IdTokenHint, read_hint};

/// The parameters the logout request carries on (through the confirmation page).
const CARRIED: [&str; 4] = [
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
];

/// A logout request, checked.
struct LogoutRequest {
    /// The hint, when one was sent.
    hint: Option<IdTokenHint>,
    /// Where to send the browser afterwards, with `state`.
    redirect: Option<(String, Option<String>)>,
}

/// Checks the request's hint, client and redirect URI; why not, for the error page.
fn check(state: &SharedState, params: &HashMap<String, String>) -> Result<LogoutRequest, String> {
    let field = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let hint = field("id_token_hint")
        .map(|token| read_hint(token, &state.verification_keys(), &state.base_url))
        .transpose()?;
    let client_id = match (field("client_id"), &hint) {
        (Some(id), Some(hint)) if id != hint.client_id => {
            return Err("client_id is not the audience of id_token_hint".into());
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(hint)) => Some(hint.client_id.clone()),
        (None, None) => None,
    };
    let redirect = match field("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = client_id
                .as_deref()
                .and_then(|id| state.oauth_client(id).ok().flatten())
                .ok_or(
                    "post_logout_redirect_uri needs client_id or id_token_hint naming a client",
                )?;
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err("post_logout_redirect_uri is not registered for this client".into());
            }
            Some((uri.to_owned(), field("state").map(str::to_owned)))
        }
    };
    Ok(LogoutRequest { hint, redirect })
}

/// `GET /logout`.
pub async fn start(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let request = match check(&state, &params) {
        Ok(request) => request,
        Err(why) => return refused(&why),
    };
    let session = match state.session(session_cookie(&headers)) {
        Ok(session) => session,
        Err(e) => return e.into_response(),
    };
    let Some(auth) = session else {
        return signed_out(&request, session_cookie(&headers).is_some());
    };
    let hinted = request.hint.as_ref().is_some_and(|hint| {
        hint.sub == auth.user.id
            && hint
                .sid
                .as_ref()
                .is_none_or(|sid| auth.session_id.as_ref() == Some(sid))
    });
    if hinted {
        return end(&state, &headers, &request);
    }
    let cookie = session_cookie(&headers).unwrap_or_default();
    let carried: String = CARRIED
        .iter()
        .filter_map(|name| params.get(*name).map(|v| hidden_input(name, v)))
        .collect();
    let body = format!(
        r#"<p>Sign out of this server as <strong>@{handle}</strong>?</p>
<form method="post" action="/logout">{carried}{token}<button type="submit">Sign out</button></form>"#,
        handle = escape(&auth.user.handle),
        token = hidden_input(FORM_TOKEN_FIELD, &form_token(cookie)),
    );
    let target = request
        .redirect
        .as_ref()
        .map_or("", |(uri, _)| uri.as_str());
    html_page_redirecting(StatusCode::OK, "Sign out", &body, target)
}

/// `POST /logout`: the confirmation page's (or the account page's) answer.
pub async fn confirm(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    if super::provenance::from_elsewhere(&headers, &state.base_url) {
        return super::provenance::refused();
    }
    let request = match check(&state, &params) {
        Ok(request) => request,
        Err(why) => return refused(&why),
    };
    if session_cookie(&headers).is_some()
        && !super::cookies::form_token_matches(
            &headers,
            params.get(FORM_TOKEN_FIELD).map(String::as_str),
        )
    {
        return html_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "<p>This sign-out did not come from this server's page. Nothing was changed.</p>",
        );
    }
    end(&state, &headers, &request)
}

/// Ends the browser's session, then on to where the request says.
fn end(state: &SharedState, headers: &HeaderMap, request: &LogoutRequest) -> Response {
    if let Some(cookie) = session_cookie(headers)
        && let Err(e) = state.end_session(cookie)
    {
        return e.into_response();
    }
    signed_out(request, session_cookie(headers).is_some())
}

/// The browser is signed out: to the client's `post_logout_redirect_uri` (with `state`), or a
/// page saying so; the session cookie the request carried (`had_cookie`) is cleared.
fn signed_out(request: &LogoutRequest, had_cookie: bool) -> Response {
    let mut response = match &request.redirect {
        Some((uri, state)) => match url::Url::parse(uri) {
            Ok(mut url) => {
                if let Some(state) = state {
                    url.query_pairs_mut().append_pair("state", state);
                }
                Redirect::to(url.as_str()).into_response()
            }
            Err(_) => refused("post_logout_redirect_uri is not a URL"),
        },
        None => html_page(
            StatusCode::OK,
            "Signed out",
            "<p>You are signed out of this server.</p>",
        ),
    };
    if had_cookie {
        clear_session_cookie(&mut response);
    }
    response
}

/// The error page of a logout request that cannot be trusted.
fn refused(why: &str) -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        "Request refused",
        &format!("<p>{}</p>", escape(why)),
    )
}
