//! `/token`: authorization code with PKCE, refresh tokens with rotation, client credentials and
//! the device code; tokens are DPoP-bound when the request carries a valid proof (RFC 9449 §5),
//! with a `jti` replay cache for those proofs. Code and device grants that include `openid`
//! come with an ID token; they come with a refresh token when
//! [`crate::scopes::refresh_token_allowed`] says so.

use std::collections::HashMap;

use axum::Form;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use proto::dpop::{
    DpopCheck, DpopPolicy, VerifiedDpopProof, single_dpop_header, verify_dpop_proof,
};
use serde_json::{Value, json};

use super::SharedState;
use super::client_auth::{ClientAuth, authenticate_client};
use crate::error::{Error, Result};
use crate::refresh::RefreshRecord;
use crate::tokens::AccessGrant;

/// The grant types `/token` accepts (`grant_types_supported`).
pub const GRANT_TYPES: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    DEVICE_CODE,
];

/// The device code grant type of RFC 8628 §3.4.
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /token`: `authorization_code` (PKCE), `refresh_token` (rotation, reuse revokes the
/// family, DPoP-bound families need the same key), `client_credentials` (confidential clients),
/// and the device code (RFC 8628).
pub async fn token(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let grant_type = field("grant_type");
    if grant_type.is_empty() {
        return Err(Error::invalid_request("grant_type is missing"));
    }
    let client = authenticate_client(&state, &headers, &form)?;
    state.limiters.token_request(&client.client.id)?;
    let now = state.clock.now();
    let proof = dpop_proof(&state, &headers, now)?;
    let body = match grant_type {
        "authorization_code" => code_grant(&state, &client, &form, proof.as_ref(), now)?,
        "refresh_token" => {
            refresh_grant(&state, &client, field("refresh_token"), proof.as_ref(), now)?
        }
        DEVICE_CODE => {
            device_code_grant(&state, &client, field("device_code"), proof.as_ref(), now)?
        }
        "client_credentials" => {
            client_credentials(&state, &client, field("scope"), proof.as_ref(), now)?
        }
        _ => {
            return Err(Error::OAuth {
                code: "unsupported_grant_type",
                description: format!("supported: {}", GRANT_TYPES.join(", ")),
            });
        }
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
        .headers_mut()
        .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    Ok(response)
}

fn token_body(access_token: &str, bound: bool, expires_in: i64, scope: &str) -> Value {
    json!({
        "access_token": access_token,
        "token_type": if bound { "DPoP" } else { "Bearer" },
        "expires_in": expires_in,
        "scope": scope,
    })
}

fn code_grant(
    state: &SharedState,
    client: &ClientAuth,
    form: &HashMap<String, String>,
    proof: Option<&VerifiedDpopProof>,
    now: i64,
) -> Result<Value> {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let client_id = client.client.id.as_str();
    let redeemed = crate::grants::redeem(
        state.store(),
        field("code"),
        client_id,
        field("redirect_uri"),
        field("code_verifier"),
        now,
    )?;
    if let Some(expected) = &redeemed.grant.dpop_jkt {
        match proof {
            Some(p) if p.thumbprint() == expected => {}
            Some(_) => return Err(Error::InvalidDpopProof(proto::Error::CnfMismatch)),
            None => return Err(Error::InvalidDpopProof(proto::Error::MissingDpopHeader)),
        }
    }
    let user = crate::users::get(state.store(), &redeemed.grant.user_id)?
        .ok_or_else(|| Error::invalid_grant("the user no longer exists"))?;
    let tokens =
        crate::tokens::issue_for_grant(&state.issuer(), &redeemed.grant, &user, proof, now)?;
    let scope = redeemed.grant.scope.clone();
    let refresh = if crate::scopes::refresh_token_allowed(&client.client, &scope) {
        Some(crate::refresh::start_family(
            state.store(),
            &RefreshRecord {
                family: String::new(),
                client_id: client_id.to_owned(),
                user_id: user.id.clone(),
                scope: scope.clone(),
                jkt: proof.map(|p| p.thumbprint().to_owned()),
                expires_at: now + state.config.lifetimes.refresh_token,
                used: false,
                granted_at: now,
            },
            &tokens.access_jti,
        )?)
    } else {
        None
    };
    redeemed.commit(
        state.store(),
        vec![tokens.access_jti.clone()],
        refresh.as_ref().map(|r| r.family.as_str()),
        now,
    )?;
    tracing::info!(client_id, user = %user.id, dpop = tokens.dpop_bound, "tokens issued");
    state.audit.record(
        now,
        "token.issued",
        serde_json::json!({"grant": "authorization_code", "client": client_id, "user": user.id,
                           "jti": tokens.access_jti, "dpop": tokens.dpop_bound}),
    );
    let mut body = token_body(
        &tokens.access_token,
        tokens.dpop_bound,
        tokens.expires_in,
        &scope,
    );
    if let Some(refresh) = refresh {
        body["refresh_token"] = refresh.token.into();
    }
    if let Some(id_token) = tokens.id_token {
        body["id_token"] = id_token.into();
    }
    Ok(body)
}

fn refresh_grant(
    state: &SharedState,
    client: &ClientAuth,
    token: &str,
    proof: Option<&VerifiedDpopProof>,
    now: i64,
) -> Result<Value> {
    if token.is_empty() {
        return Err(Error::invalid_request("refresh_token is missing"));
    }
    // The key binding is checked before the token is used, so a stolen token presented with
    // another key cannot burn (and, by reuse detection, revoke) the holder's family.
    if let Some(record) = crate::refresh::peek(state.store(), token, now)?
        && let Some(jkt) = &record.jkt
    {
        match proof {
            Some(p) if p.thumbprint() == jkt => {}
            Some(_) => return Err(Error::InvalidDpopProof(proto::Error::CnfMismatch)),
            None => return Err(Error::InvalidDpopProof(proto::Error::MissingDpopHeader)),
        }
    }
    let record = crate::refresh::redeem(state.store(), token, &client.client.id, now)?;
    crate::users::get(state.store(), &record.user_id)?
        .ok_or_else(|| Error::invalid_grant("the user no longer exists"))?;
    let jkt = record
        .jkt
        .clone()
        .or_else(|| proof.map(|p| p.thumbprint().to_owned()));
    let family = record.family.clone();
    user_tokens(
        state,
        RefreshIssue::Rotate(&family),
        RefreshRecord { jkt, ..record },
        None,
        now,
    )
}

/// Which refresh token [`user_tokens`] hands out.
#[derive(Debug, Clone, Copy)]
enum RefreshIssue<'a> {
    /// The next token of this family (the refresh grant).
    Rotate(&'a str),
    /// The first token of a new family.
    Start,
    /// None (a third-party client without `offline_access`).
    Withheld,
}

/// An access token, the refresh token `refresh` says, and with `id_token` an ID token, for the
/// user, client, scope and key binding of `template`.
fn user_tokens(
    state: &SharedState,
    refresh: RefreshIssue<'_>,
    template: RefreshRecord,
    id_token: Option<(&crate::tokens::IdTokenGrant<'_>, &crate::users::User)>,
    now: i64,
) -> Result<Value> {
    let (access_token, jti) = crate::tokens::issue_access(
        &state.issuer(),
        &AccessGrant {
            subject: &template.user_id,
            client_id: &template.client_id,
            scope: &template.scope,
            jkt: template.jkt.as_deref(),
        },
        now,
    )?;
    // Signed before any refresh token is stored, so a failure leaves no family behind.
    let id_token = id_token
        .map(|(grant, user)| {
            crate::tokens::issue_id_token(&state.issuer(), grant, user, &access_token, now)
        })
        .transpose()?;
    let refresh_token = match refresh {
        RefreshIssue::Rotate(family) => Some(crate::refresh::continue_family(
            state.store(),
            family,
            &template,
            &jti,
        )?),
        RefreshIssue::Start => {
            Some(crate::refresh::start_family(state.store(), &template, &jti)?.token)
        }
        RefreshIssue::Withheld => None,
    };
    state.store().flush()?;
    let grant = match refresh {
        RefreshIssue::Rotate(_) => "refresh_token",
        RefreshIssue::Start | RefreshIssue::Withheld => "device_code",
    };
    state.audit.record(
        now,
        "token.issued",
        json!({"grant": grant, "client": template.client_id, "user": template.user_id,
               "jti": jti, "dpop": template.jkt.is_some()}),
    );
    let mut body = token_body(
        &access_token,
        template.jkt.is_some(),
        state.config.lifetimes.access_token,
        &template.scope,
    );
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = refresh_token.into();
    }
    if let Some(id_token) = id_token {
        body["id_token"] = id_token.into();
    }
    Ok(body)
}

fn device_code_grant(
    state: &SharedState,
    client: &ClientAuth,
    device_code: &str,
    proof: Option<&VerifiedDpopProof>,
    now: i64,
) -> Result<Value> {
    let grant = crate::device_grant::poll(state.store(), device_code, &client.client.id, now)?;
    let crate::device_grant::Decision::Approved { user_id, auth_time } = &grant.decision else {
        return Err(Error::Internal(
            "a polled grant that is not approved".into(),
        ));
    };
    let user = crate::users::get(state.store(), user_id)?
        .ok_or_else(|| Error::invalid_grant("the user no longer exists"))?;
    // The device flow has no authorization request, so no `nonce` and nothing to echo.
    let no_echo = crate::grants::EchoedClaims::default();
    let id_grant = crate::tokens::IdTokenGrant {
        client_id: &grant.client_id,
        scope: &grant.scope,
        nonce: None,
        auth_time: *auth_time,
        echoed: &no_echo,
    };
    let refresh = if crate::scopes::refresh_token_allowed(&client.client, &grant.scope) {
        RefreshIssue::Start
    } else {
        RefreshIssue::Withheld
    };
    user_tokens(
        state,
        refresh,
        RefreshRecord {
            family: String::new(),
            client_id: grant.client_id.clone(),
            user_id: user.id.clone(),
            scope: grant.scope.clone(),
            jkt: proof.map(|p| p.thumbprint().to_owned()),
            expires_at: now + state.config.lifetimes.refresh_token,
            used: false,
            granted_at: now,
        },
        crate::scopes::has(&grant.scope, "openid").then_some((&id_grant, &user)),
        now,
    )
}

fn client_credentials(
    state: &SharedState,
    client: &ClientAuth,
    scope: &str,
    proof: Option<&VerifiedDpopProof>,
    now: i64,
) -> Result<Value> {
    if !client.authenticated {
        return Err(Error::OAuth {
            code: "unauthorized_client",
            description: "client_credentials is for confidential clients".into(),
        });
    }
    let scope = crate::scopes::grant(scope, &client.client, &state.config.device_access.scope)?;
    let jkt = proof.map(|p| p.thumbprint().to_owned());
    let (access_token, _) = crate::tokens::issue_access(
        &state.issuer(),
        &AccessGrant {
            subject: &client.client.id,
            client_id: &client.client.id,
            scope: &scope,
            jkt: jkt.as_deref(),
        },
        now,
    )?;
    tracing::info!(client_id = %client.client.id, dpop = jkt.is_some(), "client credentials token issued");
    state.audit.record(
        now,
        "token.issued",
        serde_json::json!({"grant": "client_credentials", "client": client.client.id,
                           "dpop": jkt.is_some()}),
    );
    Ok(token_body(
        &access_token,
        jkt.is_some(),
        state.config.lifetimes.access_token,
        &scope,
    ))
}

/// Verifies the request's DPoP proof, if it has one, and records its `jti`.
fn dpop_proof(
    state: &SharedState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<VerifiedDpopProof>> {
    if !headers.contains_key("dpop") {
        return Ok(None);
    }
    let raw = single_dpop_header(headers.get_all("dpop").iter().map(|v| v.as_bytes()))
        .map_err(Error::InvalidDpopProof)?;
    let token_url = state.url("/token");
    let issuer = state.issuer();
    let check = DpopCheck {
        htm: "POST",
        htu: &token_url,
        nonce: crate::tokens::nonce_check(&issuer),
        access_token: None,
        wire: None,
    };
    let policy = DpopPolicy::rfc9449();
    let proof = verify_dpop_proof(raw, &check, &policy, now).map_err(|e| match e {
        proto::Error::MissingNonce => Error::UseDpopNonce { resource: false },
        other => Error::InvalidDpopProof(other),
    })?;
    if !crate::tokens::nonce_accepted(&issuer, &proof, now) {
        return Err(Error::UseDpopNonce { resource: false });
    }
    if !crate::tokens::remember_jti(state.store(), &proof)? {
        return Err(Error::InvalidDpopProof(proto::Error::InvalidClaim("jti")));
    }
    Ok(Some(proof))
}
