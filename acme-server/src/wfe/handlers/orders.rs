//! newOrder and order polling (RFC 8555 §7.4), authorizations (§7.5), challenges (§7.5.1),
//! finalize (§7.4) and certificate download (§7.4.2).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::acme::{Finalize, NewOrder};

use super::{json_response, payload, post_as_get, with_links};
use crate::error::{Error, Result};
use crate::model::OrderRecord;
use crate::ra::Finalized;
use crate::wfe::intake::AccountRequest;
use crate::wfe::{SharedState, render};

/// `POST newOrder`.
pub async fn new_order(State(state): State<SharedState>, req: AccountRequest) -> Result<Response> {
    let request: NewOrder = payload(req.request.payload())?;
    let order = state.ra.new_order(&req.account, request)?;
    Ok(json_response(
        StatusCode::CREATED,
        &render::order(&state.urls, &order),
        Some(&state.urls.order(&order.id)),
        &[],
    ))
}

/// `POST order` (POST-as-GET).
pub async fn order(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    req: AccountRequest,
) -> Result<Response> {
    post_as_get(req.request.payload())?;
    let order = state.ra.order(&req.account, &id)?;
    Ok(order_response(&state, &order))
}

/// `POST authz`: POST-as-GET, or `{"status": "deactivated"}` (RFC 8555 §7.5.2).
pub async fn authz(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    req: AccountRequest,
) -> Result<Response> {
    let authz = if req.request.is_post_as_get() {
        state.ra.authz(&req.account, &id)?
    } else {
        let update: serde_json::Value = payload(req.request.payload())?;
        if update != serde_json::json!({"status": "deactivated"}) {
            return Err(Error::malformed(
                "an authorization update is {\"status\": \"deactivated\"}",
            ));
        }
        state.ra.deactivate_authz(&req.account, &id)?
    };
    let order_url = state.urls.order(&authz.order_id);
    Ok(json_response(
        StatusCode::OK,
        &render::authz(&state.urls, &authz),
        Some(&state.urls.authz(&authz.id)),
        &[(&order_url, "up")],
    ))
}

/// `POST challenge`: an answer (`{"access_token"}` / `{"id_token"}`), or POST-as-GET.
pub async fn challenge(
    State(state): State<SharedState>,
    Path((authz_id, id)): Path<(String, String)>,
    req: AccountRequest,
) -> Result<Response> {
    let url = state.urls.challenge(&authz_id, &id);
    let answered = state
        .ra
        .answer_challenge(&req.account, &authz_id, &id, &url, req.request.payload())
        .await?;
    let authz_url = state.urls.authz(&authz_id);
    Ok(json_response(
        StatusCode::OK,
        &render::challenge(&state.urls, &authz_id, answered.challenge()),
        Some(&url),
        &[(&authz_url, "up")],
    ))
}

/// Seconds a client should wait before polling a `processing` order.
const PROCESSING_RETRY_AFTER: u32 = 1;

fn order_response(state: &SharedState, order: &OrderRecord) -> Response {
    let mut response = json_response(
        StatusCode::OK,
        &render::order(&state.urls, order),
        Some(&state.urls.order(&order.id)),
        &[],
    );
    if order.status == proto::acme::OrderStatus::Processing {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(PROCESSING_RETRY_AFTER),
        );
    }
    response
}

/// `POST finalize`: the order is issued before the answer, or answered `processing` with
/// `Retry-After` and issued in the background, as its profile says.
pub async fn finalize(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    req: AccountRequest,
) -> Result<Response> {
    let request: Finalize = payload(req.request.payload())?;
    let der = proto::b64::decode(&request.csr, "csr")
        .map_err(|_| Error::malformed("csr is not base64url"))?;
    let issuance = match state.ra.finalize(&req.account, &id, &der)? {
        Finalized::Valid(order) => return Ok(order_response(&state, &order)),
        Finalized::Processing(issuance) => *issuance,
    };
    let order = issuance.order().clone();
    let background = state.clone();
    tokio::spawn(async move {
        let signer = background.clone();
        match tokio::task::spawn_blocking(move || signer.ra.issue(issuance)).await {
            Ok(Err(e)) => tracing::error!(error = %e, "background issuance failed"),
            Err(e) => tracing::error!(error = %e, "background issuance panicked"),
            Ok(Ok(_)) => {}
        }
        if let Err(e) = background.durability.durable().await {
            tracing::error!(error = %e, "store flush after issuance failed");
        }
    });
    Ok(order_response(&state, &order))
}

/// `POST certificate` (POST-as-GET): the PEM chain, with `Link: rel="alternate"` to each
/// alternate chain (RFC 8555 §7.4.2).
pub async fn certificate(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    req: AccountRequest,
) -> Result<Response> {
    chain_response(&state, &req, &id, None)
}

/// `POST certificate/{id}/{n}` (POST-as-GET): alternate chain `n`.
pub async fn certificate_alternate(
    State(state): State<SharedState>,
    Path((id, n)): Path<(String, usize)>,
    req: AccountRequest,
) -> Result<Response> {
    chain_response(&state, &req, &id, Some(n))
}

fn chain_response(
    state: &SharedState,
    req: &AccountRequest,
    id: &str,
    alternate: Option<usize>,
) -> Result<Response> {
    post_as_get(req.request.payload())?;
    let (chain, alternates) = state.ra.certificate_chain(&req.account, id, alternate)?;
    let url = state.urls.certificate(id);
    let mut others: Vec<String> = (0..alternates)
        .filter(|n| Some(*n) != alternate)
        .map(|n| format!("{url}/{n}"))
        .collect();
    if alternate.is_some() {
        others.insert(0, url.clone());
    }
    let links: Vec<(&str, &str)> = others.iter().map(|u| (u.as_str(), "alternate")).collect();
    let response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pem-certificate-chain"),
        )],
        chain,
    )
        .into_response();
    Ok(with_links(response, None, &links))
}
