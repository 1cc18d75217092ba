//! `/authorize`: the authorization request (RFC 6749 §4.1.1 with PKCE S256, OIDC `nonce` and
//! `claims`, RFC 9449 `dpop_jkt`), the HTML login page (the password form unless
//! `local_login = false`, and a "Sign in with …" button per upstream identity provider, served by
//! [`super::upstream`]), and the password form's submission. Requests whose
//! client or redirect URI cannot be trusted get an error page, never a redirect. Every
//! redirect back to the client, a code or an error, carries `iss` (RFC 9207) and the request's
//! `state`, in the query (the one response mode). Scopes the server does not support are
//! ignored (OIDC Core §3.1.2.1); a supported scope outside the client's registered list is
//! `invalid_scope`; a third-party client gets a code only for scopes the user consented to on
//! the consent page. Request objects (`request`, `request_uri`, RFC 9101) and response modes
//! other than `query` are refused, not ignored.
//!
//! A browser with a live session (its cookie, [`super::cookies`]) is not asked to log in again
//! unless the request says so (`prompt=login`, or a `max_age` its login is older than);
//! `prompt=none` never shows a page: without a usable session the client hears
//! `login_required`, without consent `consent_required`. Every login here starts a new session
//! (ending the browser's old one).

use std::collections::HashMap;

use axum::Form;
use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use proto::secret::SecretString;

use super::SharedState;
use super::cookies::{
    FORM_TOKEN_FIELD, form_token, form_token_matches, session_cookie, set_session_cookie,
    user_agent,
};
use super::html::{error_alert, escape, html_page, html_page_redirecting, set_retry_after};
use super::signin::{hidden_input, login_page, upstream_buttons};
use crate::authorization::{AuthorizationRequest, Authorized, Prompt};
use crate::error::Error;
use crate::identity::claims::EchoedClaims;
use crate::sessions::{Authentication, Method};
use crate::users::User;

/// Why the request cannot proceed.
pub(super) enum Refusal {
    /// Shown to the user: the client or redirect URI is not trustworthy.
    Page(String),
    /// Sent back to the client's redirect URI (RFC 6749 §4.1.2.1).
    Redirect {
        uri: String,
        /// The issuer, for `iss` (RFC 9207 §2).
        iss: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(message) => html_page(
                StatusCode::BAD_REQUEST,
                "Request refused",
                &format!("<p>{}</p>", escape(&message)),
            ),
            Refusal::Redirect {
                uri,
                iss,
                state,
                error,
                description,
            } => authorization_response(
                &uri,
                &iss,
                state.as_deref(),
                &[("error", error), ("error_description", &description)],
            ),
        }
    }
}

/// The authorization response (RFC 6749 §4.1.2, §4.1.2.1): a redirect to the client's
/// `redirect_uri` with `pairs`, then `iss` (RFC 9207 §2: in every response, success or
/// error) and the request's `state`, in the query.
fn authorization_response(
    redirect_uri: &str,
    iss: &str,
    state: Option<&str>,
    pairs: &[(&str, &str)],
) -> Response {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
                q.append_pair("iss", iss);
                if let Some(s) = state {
                    q.append_pair("state", s);
                }
            }
            Redirect::to(url.as_str()).into_response()
        }
        Err(_) => (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response(),
    }
}

/// The authorization request of `params`, validated; or why not.
pub(super) fn validate(
    state: &SharedState,
    params: HashMap<String, String>,
) -> std::result::Result<AuthorizationRequest, Refusal> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| Refusal::Page("client_id is missing".into()))?;
    let client = state
        .oauth_client(client_id)
        .ok()
        .flatten()
        .ok_or_else(|| Refusal::Page(format!("unknown client {client_id:?}")))?;
    let redirect_uri = params
        .get("redirect_uri")
        .filter(|r| client.allows_redirect(r))
        .ok_or_else(|| {
            Refusal::Page("redirect_uri is missing or not registered for this client".into())
        })?
        .clone();
    let st = params.get("state").cloned();
    let refuse = |error: &'static str, description: &str| Refusal::Redirect {
        uri: redirect_uri.clone(),
        iss: state.base_url.clone(),
        state: st.clone(),
        error,
        description: description.to_owned(),
    };
    // Parameters that would change the request or the response if they were honoured: refused
    // rather than ignored (OIDC Core §6, RFC 9101 §6.3, OAuth 2.0 Multiple Response Types §2).
    if params.contains_key("request") {
        return Err(refuse(
            "request_not_supported",
            "request objects (the request parameter) are not supported",
        ));
    }
    if params.contains_key("request_uri") {
        return Err(refuse(
            "request_uri_not_supported",
            "the request_uri parameter is not supported",
        ));
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return Err(refuse(
            "invalid_request",
            &format!("response_mode {mode:?} is not supported; the one response mode is query"),
        ));
    }
    if params.get("response_type").map(String::as_str) != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let challenge = params
        .get("code_challenge")
        .map(String::as_str)
        .unwrap_or("");
    if challenge.is_empty() {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: code_challenge is missing",
        ));
    }
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if challenge.len() != 43 || proto::b64::decode(challenge, "code_challenge").is_err() {
        return Err(refuse(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 hash",
        ));
    }
    let requested = params.get("scope").map_or("openid", String::as_str);
    let scope = crate::scopes::authorization_scope(requested, &client, state.device_scope())
        .map_err(|d| refuse("invalid_scope", &d))?;
    if let Some(jkt) = params.get("dpop_jkt")
        && (jkt.len() != 43 || proto::b64::decode(jkt, "dpop_jkt").is_err())
    {
        return Err(refuse(
            "invalid_request",
            "dpop_jkt must be a JWK SHA-256 thumbprint",
        ));
    }
    let echoed = EchoedClaims::from_claims_parameter(params.get("claims").map(String::as_str))
        .map_err(|d| refuse("invalid_request", &d))?;
    let prompt = Prompt::parse(params.get("prompt").map(String::as_str))
        .map_err(|d| refuse("invalid_request", &d))?;
    let max_age =
        match params.get("max_age") {
            None => None,
            Some(v) => Some(v.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(|| {
                refuse("invalid_request", "max_age must be a non-negative integer")
            })?),
        };
    Ok(AuthorizationRequest {
        code_challenge: challenge.to_owned(),
        nonce: params.get("nonce").cloned(),
        dpop_jkt: params.get("dpop_jkt").cloned(),
        client,
        redirect_uri,
        state: st,
        scope,
        echoed,
        prompt,
        max_age,
        params,
    })
}

/// `GET /authorize`: the browser's session goes on where the request allows it; otherwise the
/// login form (or, with `prompt=none`, `login_required`).
pub async fn show(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let req = match validate(&state, params) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    let session = match state.session(session_cookie(&headers)) {
        Ok(session) => session.filter(|auth| req.accepts_session(auth, state.now())),
        Err(e) => return error_response(&state, &req, &e),
    };
    match session {
        // RFC 8252 §8.6: a browser's session does not silently give a code to a redirect
        // anyone on the machine can listen on (a public client's loopback or private-use
        // redirect): the user confirms first.
        Some(auth) if is_browser(&headers) && redirect_unproven(&req) => {
            if req.prompt.none {
                let error = Error::OAuth {
                    code: "interaction_required",
                    description:
                        "this client's redirect cannot be trusted without the user's confirmation"
                            .into(),
                };
                return error_response(&state, &req, &error);
            }
            continue_page(&req, &auth, session_cookie(&headers).unwrap_or_default())
        }
        Some(auth) => after_login(&state, &req, &auth),
        None if req.prompt.none => {
            let error = Error::OAuth {
                code: "login_required",
                description: "the user is not signed in here".into(),
            };
            error_response(&state, &req, &error)
        }
        None => login_form(&state, &req, None, StatusCode::OK),
    }
}

/// Whether the request is a browser's (browsers say what a request is for, `Sec-Fetch-Mode`;
/// a device's own HTTP client holding its own session cookie does not).
fn is_browser(headers: &HeaderMap) -> bool {
    headers.contains_key("sec-fetch-mode") || headers.contains_key("sec-fetch-dest")
}

/// Whether the redirect of a request cannot prove the client's identity: a public client's
/// redirect that is not `https` (a loopback port or a private-use scheme, which any program on
/// the device may claim).
fn redirect_unproven(req: &AuthorizationRequest) -> bool {
    !req.client.is_confidential() && !req.redirect_uri.starts_with("https://")
}

/// The page asking a signed-in user to confirm a request whose redirect cannot prove the
/// client's identity.
fn continue_page(req: &AuthorizationRequest, auth: &Authentication, cookie: &str) -> Response {
    let hidden: String = req.params.iter().map(|(k, v)| hidden_input(k, v)).collect();
    let body = format!(
        r#"<p>Continue to <strong>{client}</strong> as <strong>@{handle}</strong>?</p>
<form method="post" action="/authorize/continue">{hidden}{token}
<button type="submit">Continue</button></form>
<p><a href="/account">Not you?</a></p>"#,
        client = escape(&req.client.id),
        handle = escape(&auth.user.handle),
        token = hidden_input(FORM_TOKEN_FIELD, &form_token(cookie)),
    );
    html_page_redirecting(StatusCode::OK, "Continue?", &body, &req.redirect_uri)
}

/// `POST /authorize/continue`: the signed-in user confirmed the request.
pub async fn continue_as(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(mut params): Form<HashMap<String, String>>,
) -> Response {
    let token = params.remove(FORM_TOKEN_FIELD);
    if super::provenance::from_elsewhere(&headers, &state.base_url)
        || !form_token_matches(&headers, token.as_deref())
    {
        return super::provenance::refused();
    }
    let req = match validate(&state, params) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    match state.session(session_cookie(&headers)) {
        Ok(Some(auth)) if req.accepts_session(&auth, state.now()) => {
            after_login(&state, &req, &auth)
        }
        Ok(_) => login_form(
            &state,
            &req,
            Some("Your session ended; sign in again."),
            StatusCode::OK,
        ),
        Err(e) => error_response(&state, &req, &e),
    }
}

/// `POST /authorize`: the login form's submission (also usable directly by headless devices).
pub async fn submit(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(mut params): Form<HashMap<String, String>>,
) -> Response {
    if super::provenance::from_elsewhere(&headers, &state.base_url) {
        return super::provenance::refused();
    }
    let username = params.remove("username").unwrap_or_default();
    let password = SecretString::new(params.remove("password").unwrap_or_default());
    let req = match validate(&state, params) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    let user = match state.log_in(peer.ip(), username, password).await {
        Ok(user) => user,
        Err(Error::BadCredentials) => {
            tracing::info!(client_id = %req.client.id, "login failed");
            return login_form(
                &state,
                &req,
                Some("Wrong handle or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(Error::RateLimited {
            retry_after_secs,
            description,
        }) => {
            tracing::warn!(client_id = %req.client.id, %description, "login refused");
            let mut page = login_form(
                &state,
                &req,
                Some(&format!("Not now: {description}.")),
                StatusCode::TOO_MANY_REQUESTS,
            );
            set_retry_after(&mut page, retry_after_secs);
            return page;
        }
        Err(Error::PasswordLoginOff) => {
            return login_form(
                &state,
                &req,
                Some(crate::error::PASSWORD_LOGIN_OFF),
                StatusCode::FORBIDDEN,
            );
        }
        Err(e) => return e.into_response(),
    };
    after_new_login(&state, &headers, &req, user, &Method::Password)
}

/// What follows a login just made by `method` (a password, an upstream): a new session for the
/// browser (ending its old one), then [`after_login`].
pub(super) fn after_new_login(
    state: &SharedState,
    headers: &HeaderMap,
    req: &AuthorizationRequest,
    user: User,
    method: &Method,
) -> Response {
    let started = state.start_session(user, method, user_agent(headers), session_cookie(headers));
    let (auth, cookie) = match started {
        Ok(started) => started,
        Err(e) => return error_response(state, req, &e),
    };
    let mut response = after_login(state, req, &auth);
    if let Some(cookie) = cookie {
        set_session_cookie(&mut response, &cookie, state.config.sessions.absolute_secs);
    }
    response
}

/// What follows a login, new or held by the session: the code, or the consent page of a
/// third-party client; an error goes back to the client.
fn after_login(state: &SharedState, req: &AuthorizationRequest, auth: &Authentication) -> Response {
    match state.authorize(req, auth) {
        Ok(Authorized::Code(code)) => code_response(state, req, &auth.user, &code),
        Ok(Authorized::ConsentNeeded(ticket)) => {
            super::consent_page::page(state, req, &auth.user, &ticket)
        }
        Err(e) => error_response(state, req, &e),
    }
}

/// The error redirect to the client of a login at `/authorize` that ended in `error`
/// (RFC 6749 §4.1.2.1, mapped by [`Error::authorization_error`]).
pub(super) fn error_response(
    state: &SharedState,
    req: &AuthorizationRequest,
    error: &Error,
) -> Response {
    let (code, description) = error.authorization_error();
    Refusal::Redirect {
        uri: req.redirect_uri.clone(),
        iss: state.base_url.clone(),
        state: req.state.clone(),
        error: code,
        description,
    }
    .into_response()
}

/// The redirect back to the client with its code.
pub(super) fn code_response(
    state: &SharedState,
    req: &AuthorizationRequest,
    user: &User,
    code: &str,
) -> Response {
    tracing::info!(client_id = %req.client.id, user = %user.id, "login succeeded; code issued");
    authorization_response(
        &req.redirect_uri,
        &state.base_url,
        req.state.as_deref(),
        &[("code", code)],
    )
}

/// What each scope means, for the consent and device pages; `device_scope` is the configured
/// device scope.
pub(super) fn scope_description<'a>(scope: &'a str, device_scope: &str) -> &'a str {
    match scope {
        "openid" => "Know who you are",
        "profile" => "See your name, handle and team",
        "email" => "See your email address",
        "offline_access" => "Stay signed in",
        "wire_client_id" => "Identify your devices",
        crate::scopes::GA4GH_PASSPORT => {
            "See your GA4GH Passport: your research visas and the identities linked to your account"
        }
        s if s == device_scope => "Register devices and get device certificates in your name",
        other => other,
    }
}

/// The list of what `scope` allows, one `<li>` each, for a page.
pub(super) fn scope_items(scope: &str, device_scope: &str) -> String {
    crate::scopes::split(scope)
        .map(|s| format!("<li>{}</li>", escape(scope_description(s, device_scope))))
        .collect()
}

/// The login page: the password form (unless `local_login = false`) and a button per upstream,
/// each carrying the request's parameters.
fn login_form(
    state: &SharedState,
    req: &AuthorizationRequest,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let hidden: String = req.params.iter().map(|(k, v)| hidden_input(k, v)).collect();
    let error = error_alert(error);
    let password_form = if state.local_login() {
        format!(
            r#"<form method="post" action="/authorize">{hidden}
<label>Handle <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>"#
        )
    } else {
        String::new()
    };
    // The request's own parameters, except those the upstream forms set themselves.
    let upstream_hidden: String = req
        .params
        .iter()
        .filter(|(k, _)| !super::upstream::START_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| hidden_input(k, v))
        .collect();
    let (upstreams, token) = upstream_buttons(state, &upstream_hidden);
    let body = format!(
        r#"<p>Sign in to continue to <strong>{client}</strong>.</p>{error}
{password_form}{upstreams}"#,
        client = escape(&req.client.id),
    );
    login_page(
        state,
        status,
        "Sign in",
        &body,
        Some(&req.redirect_uri),
        token.as_deref(),
    )
}
