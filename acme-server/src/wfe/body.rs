//! Request bodies and `[limits] max_body_bytes`. A client that writes its whole request before
//! it reads (most simple clients do) must receive the 413 for a body over the limit; if the
//! server answered and closed the connection with the body still unread, the client's kernel
//! would see a reset, and the client a broken pipe or a TLS EOF instead of the answer. So an
//! oversized body is read to its end and thrown away before the refusal is sent, as long as it
//! is at most [`DISCARD_AT_MOST`] bytes and arrives within the request timeout; a larger one is
//! answered unread (its client may then see the reset). Nothing of a discarded body is kept.
//!
//! Two places: [`discard_declared_oversize`], a layer in front of `server_kit::limits` (which
//! refuses a declared `Content-Length` over the limit without reading the body), and
//! [`read_limited`], the JWS intake's read, which meets an oversized body sent without a
//! length (chunked).

use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use server_kit::limits::Refusal;

use super::SharedState;
use crate::error::{Error, Result};

/// The largest oversized body read (and discarded) so that its 413 reaches the client.
pub const DISCARD_AT_MOST: u64 = 1024 * 1024;

/// The next data of `body` (empty for a trailers frame); `None` at its end.
async fn next_data(body: &mut Body) -> Option<Result<Bytes>> {
    let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
    Some(match frame {
        Ok(frame) => Ok(frame.into_data().unwrap_or_default()),
        Err(_) => Err(Error::malformed("the request body is unreadable")),
    })
}

/// Reads what is left of `body` and drops it, `read` bytes having been read already, until its
/// end, an error, or [`DISCARD_AT_MOST`] bytes in all.
async fn discard(mut body: Body, mut read: u64) {
    while read <= DISCARD_AT_MOST {
        match next_data(&mut body).await {
            Some(Ok(data)) => read += data.len() as u64,
            Some(Err(_)) | None => return,
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A request declaring a body over the limit, but not over [`DISCARD_AT_MOST`], has its body
/// read and discarded (within the request timeout) before the limits layer refuses it, so the
/// refusal reaches a client that sends everything first. A client that asked
/// `Expect: 100-continue` has not sent its body and is answered at once.
pub async fn discard_declared_oversize(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let limits = &state.config.limits;
    let oversize = declared_length(request.headers())
        .is_some_and(|n| n > limits.max_body_bytes as u64 && n <= DISCARD_AT_MOST);
    if !oversize || request.headers().contains_key(header::EXPECT) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let timeout = Duration::from_secs(limits.request_timeout_secs);
    // A body that is not over within the timeout is left unread; the refusal goes out anyway.
    let _ = tokio::time::timeout(timeout, discard(body, 0)).await;
    next.run(Request::from_parts(parts, Body::empty())).await
}

/// The body, if it is at most `max` bytes; a longer one is discarded (see the module) and
/// refused with 413.
pub async fn read_limited(mut body: Body, max: usize) -> Result<Vec<u8>> {
    let mut read = Vec::new();
    while let Some(data) = next_data(&mut body).await {
        let data = data?;
        if read.len() + data.len() > max {
            discard(body, (read.len() + data.len()) as u64).await;
            return Err(Error::Refused(Refusal::BodyTooLarge { max }));
        }
        read.extend_from_slice(&data);
    }
    Ok(read)
}
