//! The directory (RFC 8555 §7.1.1) and newNonce (§7.2).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::acme::{Directory, DirectoryMeta};

use crate::wfe::SharedState;

/// `GET directory`.
pub async fn directory(State(state): State<SharedState>) -> Json<Directory> {
    let urls = &state.urls;
    Json(Directory {
        new_nonce: urls.new_nonce(),
        new_account: urls.new_account(),
        new_order: urls.new_order(),
        revoke_cert: Some(urls.revoke_cert()),
        key_change: Some(urls.key_change()),
        meta: Some(DirectoryMeta {
            terms_of_service: state.config.terms_of_service.clone(),
            website: state.config.website.clone(),
            external_account_required: state.config.external_account_required,
            ..DirectoryMeta::default()
        }),
    })
}

/// `HEAD newNonce`: 200 (the nonce is added to every response).
pub async fn new_nonce_head() -> StatusCode {
    StatusCode::OK
}

/// `GET newNonce`: 204.
pub async fn new_nonce_get() -> StatusCode {
    StatusCode::NO_CONTENT
}
