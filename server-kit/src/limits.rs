//! What one client may take of a server: connections, time and bytes. Enforced below the
//! protocol, the same way for both servers; the refusals a client can still be told about
//! ([`Refusal`]) are rendered by the server in its own error format (ACME problem document, OAuth
//! error JSON).
//!
//! - at most `max_connections` open connections; one more is closed before the TLS handshake;
//! - the TLS handshake within `handshake_timeout`;
//! - each request head (including the wait on an idle keep-alive connection) within
//!   `header_read_timeout`, and at most `max_header_bytes` of it: a slowloris connection is
//!   closed, it never holds a worker (connections are tasks, not threads);
//! - a request body of at most `max_body_bytes` (413), and the whole request, body included,
//!   within `request_timeout` (408).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits of one server (`[limits]` in its configuration file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Seconds for the TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Seconds to receive a request head (also the idle keep-alive timeout).
    pub header_read_timeout_secs: u64,
    /// Seconds for a whole request, body included.
    pub request_timeout_secs: u64,
    /// Bytes of request head (hyper's read buffer; at least 8192).
    pub max_header_bytes: usize,
    /// Bytes of request body.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            handshake_timeout_secs: 10,
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// Checks the values make sense.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: &str| Err(crate::Error::Config(format!("limits: {m}")));
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if self.handshake_timeout_secs == 0
            || self.header_read_timeout_secs == 0
            || self.request_timeout_secs == 0
        {
            return bad("timeouts must be at least 1 second");
        }
        if self.max_header_bytes < 8192 {
            return bad("max_header_bytes must be at least 8192");
        }
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes must be at least 1");
        }
        Ok(())
    }
}

/// A request refused by a limit, to be answered in the server's own error format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The body is larger than allowed (413).
    #[error("the request body is larger than {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// The request did not complete in time (408).
    #[error("the request did not complete within {secs} s")]
    Timeout {
        /// The limit.
        secs: u64,
    },
}

impl Refusal {
    /// The HTTP status it is sent with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// How a server renders a [`Refusal`].
pub type RenderRefusal = fn(Refusal) -> Response;

#[derive(Debug, Clone, Copy)]
struct RequestLimits {
    max_body_bytes: usize,
    timeout: Duration,
    render: RenderRefusal,
}

/// Applies the request-level limits (body size, whole-request time) to `router`, refusals
/// rendered by `render`. Apply it before (inside) the layers that add headers every response
/// must carry, so refusals carry them too.
pub fn layer<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    limits: &Limits,
    render: RenderRefusal,
) -> axum::Router<S> {
    let request_limits = RequestLimits {
        max_body_bytes: limits.max_body_bytes,
        timeout: Duration::from_secs(limits.request_timeout_secs),
        render,
    };
    router
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            request_limits,
            enforce,
        ))
}

/// Body size and whole-request time. A declared `Content-Length` over the limit is refused before
/// the handler runs; a chunked body over it is cut by axum's body limit, whose plain-text 413 is
/// replaced here by the server's own error.
async fn enforce(State(limits): State<RequestLimits>, request: Request, next: Next) -> Response {
    let refuse_large = || {
        (limits.render)(Refusal::BodyTooLarge {
            max: limits.max_body_bytes,
        })
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return refuse_large();
    }
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) if response.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let ours = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.contains("json"));
            if ours { response } else { refuse_large() }
        }
        Ok(response) => response,
        Err(_) => (limits.render)(Refusal::Timeout {
            secs: limits.timeout.as_secs(),
        }),
    }
}

/// Takes a connection slot before the TLS handshake; without one the connection is closed.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSlots {
    slots: Arc<Semaphore>,
}

impl ConnectionSlots {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
        }
    }
}

impl<I, S> axum_server::accept::Accept<I, S> for ConnectionSlots
where
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = Slotted<I>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Slotted<I>, S)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        std::future::ready(match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok((
                Slotted {
                    inner: stream,
                    _permit: permit,
                },
                service,
            )),
            Err(_) => {
                tracing::warn!(target: "limits", "connection limit reached; closing a new connection");
                Err(io::Error::other("connection limit reached"))
            }
        })
    }
}

/// A connection holding its slot until it is dropped.
#[derive(Debug)]
pub(crate) struct Slotted<I> {
    inner: I,
    _permit: OwnedSemaphorePermit,
}

impl<I: AsyncRead + Unpin> AsyncRead for Slotted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Slotted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_nonsense_does_not() {
        assert!(Limits::default().validate().is_ok());
        for bad in [
            Limits {
                max_connections: 0,
                ..Limits::default()
            },
            Limits {
                request_timeout_secs: 0,
                ..Limits::default()
            },
            Limits {
                max_header_bytes: 1024,
                ..Limits::default()
            },
            Limits {
                max_body_bytes: 0,
                ..Limits::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusals_have_their_statuses() {
        assert_eq!(
            Refusal::BodyTooLarge { max: 1 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            Refusal::Timeout { secs: 1 }.status(),
            StatusCode::REQUEST_TIMEOUT
        );
    }
}
