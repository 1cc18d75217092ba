//! The SDK's HTTP plumbing for the authz-server and OpenID Providers: a request sent with its
//! failure named by the step, and answers read with a bound ([`io_kit::fetch::read_body`]) —
//! JSON bodies up to [`MAX_RESPONSE_BYTES`], error bodies up to [`MAX_ERROR_BODY_BYTES`].

use serde_json::Value;

use crate::error::{Cause, Error, Result};
use crate::step::Step;

/// The largest JSON answer read (token responses, discovery documents, device records).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The largest error body kept for the message of a refusal.
pub const MAX_ERROR_BODY_BYTES: usize = 8 * 1024;

/// Sends `request`; a transport failure is a [`Cause::Network`] of `step`.
pub(crate) async fn send(
    step: Step,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response> {
    request.send().await.map_err(|e| Error::network(step, &e))
}

/// A refusal: the status and (up to [`MAX_ERROR_BODY_BYTES`] of) the body.
pub(crate) async fn refused(step: Step, response: reqwest::Response) -> Error {
    let status = response.status().as_u16();
    let body = io_kit::fetch::read_body(response, MAX_ERROR_BODY_BYTES)
        .await
        .map_or_else(
            |e| e.to_string(),
            |b| String::from_utf8_lossy(&b).into_owned(),
        );
    Error::new(step, Cause::Server { status, body })
}

/// The JSON body of `response` (at most [`MAX_RESPONSE_BYTES`]).
pub(crate) async fn json_of(step: Step, response: reqwest::Response) -> Result<Value> {
    let body = io_kit::fetch::read_body(response, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| Error::protocol(step, e))?;
    serde_json::from_slice(&body).map_err(|e| Error::protocol(step, format!("not JSON: {e}")))
}
