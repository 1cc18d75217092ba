//! Errors as HTTP responses: the problem document of [`Error::to_problem`] with its status,
//! `Content-Type: application/problem+json`, the `algorithms` a `badSignatureAlgorithm` must list
//! (RFC 8555 §6.2), and the headers some problems carry (`Location`, `Retry-After`, the
//! terms-of-service `Link`). Internal failures are logged here, and shown only as
//! `serverInternal`.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ProblemType};

/// The `Retry-After` of a request the store could not serve for now.
pub const STORE_RETRY_AFTER_SECS: u64 = 1;

/// Answers a limit's refusal as a `malformed` problem document with the limit's status.
pub fn render_refusal(refusal: server_kit::limits::Refusal) -> Response {
    Error::Refused(refusal).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if matches!(self, Self::Storage(_) | Self::Config(_) | Self::Internal(_)) {
            tracing::error!(error = %self, "request failed");
        }
        if matches!(self, Self::StoreUnavailable(_)) {
            tracing::warn!(error = %self, "request failed");
        }
        let (status, problem) = self.to_problem();
        let mut body = serde_json::to_value(&problem).unwrap_or_default();
        if matches!(
            self,
            Self::Problem {
                kind: ProblemType::BadSignatureAlgorithm,
                ..
            }
        ) {
            // RFC 8555 §6.2: the problem names the algorithms the server accepts.
            body["algorithms"] = proto::jws::Algorithm::ALL
                .iter()
                .map(|alg| alg.name())
                .collect();
        }
        let mut response = (status, Json(body)).into_response();
        response
            .extensions_mut()
            .insert(server_kit::serve::RefusalReason(format!(
                "{}: {}",
                problem.kind, problem.detail
            )));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            Self::Conflict { location, .. } => {
                if let Ok(value) = HeaderValue::from_str(location) {
                    headers.insert(header::LOCATION, value);
                }
            }
            Self::RateLimited {
                retry_after_secs, ..
            }
            | Self::Unavailable {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::StoreUnavailable(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(STORE_RETRY_AFTER_SECS),
                );
            }
            Self::TermsOfServiceNotAgreed { terms } => {
                let link = format!("<{terms}>;rel=\"terms-of-service\"");
                if let Ok(value) = HeaderValue::from_str(&link) {
                    headers.append(header::LINK, value);
                }
            }
            _ => {}
        }
        response
    }
}
