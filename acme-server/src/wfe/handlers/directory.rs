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
        renewal_info: Some(urls.renewal_info()),
        meta: Some(DirectoryMeta {
            terms_of_service: state.config.terms_of_service.clone(),
            website: state.config.website.clone(),
            external_account_required: state.config.external_account_required,
            profiles: state.config.profile_descriptions(),
            ..DirectoryMeta::default()
        }),
    })
}

/// `GET renewalInfo/{certID}` (RFC 9773 §4.1): the suggested window, with `Retry-After`.
pub async fn renewal_info(
    State(state): State<SharedState>,
    axum::extract::Path(cert_id): axum::extract::Path<String>,
) -> crate::error::Result<axum::response::Response> {
    use axum::response::IntoResponse;
    let (start, end) = state.ra.renewal_window(&cert_id)?;
    let body = proto::acme::RenewalInfo {
        suggested_window: proto::acme::SuggestedWindow {
            start: proto::rfc3339::format(start),
            end: proto::rfc3339::format(end),
        },
        explanation_url: None,
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(crate::ra::renewal::RETRY_AFTER),
    );
    Ok(response)
}

/// `HEAD newNonce`: 200 (the nonce is added to every response).
pub async fn new_nonce_head() -> StatusCode {
    StatusCode::OK
}

/// `GET newNonce`: 204.
pub async fn new_nonce_get() -> StatusCode {
    StatusCode::NO_CONTENT
}
