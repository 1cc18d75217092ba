//! newAccount (RFC 8555 §7.3), account POST-as-GET and update (§7.3.2, §7.3.6), and the
//! account's orders list (§7.1.2.1).

use std::collections::HashMap;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use proto::acme::{AccountUpdate, NewAccount};
use serde_json::json;

use super::{json_response, payload};
use crate::error::{Error, Result};
use crate::ra::AccountOutcome;
use crate::wfe::intake::{AccountRequest, KeyRequest};
use crate::wfe::{SharedState, render};

/// `POST newAccount`.
pub async fn new_account(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: KeyRequest,
) -> Result<Response> {
    let request: NewAccount = payload(req.request.payload())?;
    let (status, record) =
        match state
            .ra
            .new_account(&req.jwk, request, &state.urls.new_account(), peer.ip())?
        {
            AccountOutcome::Created(r) => (StatusCode::CREATED, r),
            AccountOutcome::Existing(r) => (StatusCode::OK, r),
        };
    let location = state.urls.account(&record.id);
    Ok(json_response(
        status,
        &render::account(&state.urls, &record),
        Some(&location),
        &[],
    ))
}

/// `POST account` (POST-as-GET, update, deactivation).
pub async fn account(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    req: AccountRequest,
) -> Result<Response> {
    same_account(&req, &id)?;
    let record = if req.request.is_post_as_get() {
        req.account.record().clone()
    } else {
        let update: AccountUpdate = payload(req.request.payload())?;
        state.ra.update_account(&req.account, update)?
    };
    Ok(json_response(
        StatusCode::OK,
        &render::account(&state.urls, &record),
        Some(&state.urls.account(&record.id)),
        &[],
    ))
}

/// Orders per page of the orders list.
pub const ORDERS_PER_PAGE: usize = 50;

/// `POST account/orders[?page=N]` (POST-as-GET): `{"orders": [...]}`, with `Link rel="next"`
/// while more pages follow (RFC 8555 §7.1.2.1).
pub async fn account_orders(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    req: AccountRequest,
) -> Result<Response> {
    same_account(&req, &id)?;
    super::post_as_get(req.request.payload())?;
    let page: usize = match query.get("page") {
        Some(p) => p
            .parse()
            .map_err(|_| Error::malformed("page is not a number"))?,
        None => 0,
    };
    let all = state.ra.orders_of(&req.account)?;
    let orders: Vec<String> = all
        .iter()
        .skip(page.saturating_mul(ORDERS_PER_PAGE))
        .take(ORDERS_PER_PAGE)
        .map(|o| state.urls.order(o))
        .collect();
    let next = format!("{}?page={}", state.urls.account_orders(&id), page + 1);
    let links: Vec<(&str, &str)> = if all.len() > (page + 1).saturating_mul(ORDERS_PER_PAGE) {
        vec![(next.as_str(), "next")]
    } else {
        Vec::new()
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({ "orders": orders }),
        None,
        &links,
    ))
}

/// An account resource is only reachable by that account's own key.
fn same_account(req: &AccountRequest, id: &str) -> Result<()> {
    if req.account.id() == id {
        Ok(())
    } else {
        Err(Error::unauthorized("the kid is not this account"))
    }
}
