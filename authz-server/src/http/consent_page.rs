//! The consent page of a third-party client (`/authorize` after the login) and its answer
//! (`POST /authorize/consent`). The page lists, scope by scope, what the client would get:
//! the user's claims with their values now, and the permission services it lets the server
//! ask ([`crate::consents::Release`]). Each optional scope has a ticked box; the user may untick
//! it to withhold it ([`crate::consents::Choice`]), and the code then carries only the rest.
//! The answer is remembered per client until the user withdraws it (`/account`, or `DELETE
//! /consents/{client}`).

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::SharedState;
use super::authorize::{Refusal, code_response, scope_description, validate};
use super::html::{escape, html_page, html_page_redirecting};
use crate::authorization::AuthorizationRequest;
use crate::consents::{Choice, Release};
use crate::users::User;

/// The form field saying the answer carries the user's choice of scopes (an answer without it
/// allows everything requested).
const CHOICE_FIELD: &str = "choice";

/// The consent page of `req`, waiting under the ticket `id`, for `user`.
pub(super) fn page(
    state: &SharedState,
    req: &AuthorizationRequest,
    user: &User,
    id: &str,
) -> Response {
    let releases = match state.release_preview(user, &req.scope) {
        Ok(releases) => releases,
        Err(e) => return e.into_response(),
    };
    let items: String = releases
        .iter()
        .map(|release| item(release, state.device_scope()))
        .collect();
    // The sources no scope gates release their claims whatever the user unticks.
    let always: String = state
        .claims_sources
        .ungated()
        .iter()
        .map(|(source, claims)| {
            format!(
                "<li>{} from <code>{}</code>, asked when a token is issued, whatever you untick</li>",
                escape(&claims.join(", ")),
                escape(source)
            )
        })
        .collect();
    let body = format!(
        r#"<p><strong>{client}</strong> asks to:</p>
<form method="post" action="/authorize/consent"><input type="hidden" name="ticket" value="{id}">
<input type="hidden" name="{CHOICE_FIELD}" value="1">
<ul id="releases">{items}{always}</ul>
<p><small>Untick what you do not want to share. Your answer is remembered for this app until you withdraw it on your account page.</small></p>
<button type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="deny">Deny</button></form>"#,
        client = escape(&req.client.id),
    );
    html_page_redirecting(StatusCode::OK, "Allow access?", &body, &req.redirect_uri)
}

/// One scope of the page: its meaning, what it releases, and a ticked box when optional.
fn item(release: &Release, device_scope: &str) -> String {
    let scope = escape(&release.scope);
    let meaning = escape(scope_description(&release.scope, device_scope));
    let label = if release.optional {
        format!(
            r#"<label><input type="checkbox" name="scope" value="{scope}" checked> {meaning}</label>"#
        )
    } else {
        format!("{meaning} <small>(required)</small>")
    };
    let claims: String = release
        .claims
        .iter()
        .map(|(name, value)| format!("<li><code>{}</code>: {}</li>", escape(name), escape(value)))
        .chain(release.sources.iter().map(|(source, claims)| {
            format!(
                "<li>{} from <code>{}</code>, asked when a token is issued</li>",
                escape(&claims.join(", ")),
                escape(source)
            )
        }))
        .collect();
    let released = if claims.is_empty() {
        String::new()
    } else {
        format!("<ul>{claims}</ul>")
    };
    format!(r#"<li data-scope="{scope}">{label}{released}</li>"#)
}

/// `POST /authorize/consent`: the answer of the consent page.
pub async fn answer(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if super::provenance::from_elsewhere(&headers, &state.base_url) {
        return super::provenance::refused();
    }
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let ticket = match state.take_consent_ticket(field("ticket").unwrap_or_default()) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return html_page(
                StatusCode::BAD_REQUEST,
                "Request refused",
                "<p>This consent page expired or was already answered. Start again from the application.</p>",
            );
        }
        Err(e) => return e.into_response(),
    };
    let auth = match state.consenting_user(&ticket) {
        Ok(auth) => auth,
        Err(e) => return e.into_response(),
    };
    let req = match validate(&state, ticket.params) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    let denied = |description: &str| {
        Refusal::Redirect {
            uri: req.redirect_uri.clone(),
            iss: state.base_url.clone(),
            state: req.state.clone(),
            error: "access_denied",
            description: description.into(),
        }
        .into_response()
    };
    if field("action") != Some("allow") {
        return denied("the user denied the request");
    }
    let ticked: Option<Vec<String>> = field(CHOICE_FIELD).map(|_| {
        form.iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect()
    });
    let choice = Choice::of(&req.scope, ticked.as_deref());
    if choice.granted.is_empty() {
        return denied("the user withheld everything the request asked for");
    }
    match state.consented(&req, &auth, &choice) {
        Ok(code) => code_response(&state, &req, &auth.user, &code),
        Err(e) => e.into_response(),
    }
}
