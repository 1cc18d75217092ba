//! What one client may take of a server: connections, time and bytes. Enforced below the
//! protocol, the same way for both servers; the refusals a client can still be told about
//! ([`Refusal`]) are rendered by the server in its own error format (ACME problem document, OAuth
//! error JSON).
//!
//! - at most `max_connections` open connections, and at most `max_connections_per_address` from
//!   one client address, so one client cannot hold every slot; one more is closed before the TLS
//!   handshake, and the refusals are logged at most once a second with the count of those not
//!   logged;
//! - the TLS handshake within `handshake_timeout`;
//! - each request head (including the wait on an idle keep-alive connection, and the wait for
//!   the first request after the handshake) within `header_read_timeout`, and at most
//!   `max_header_bytes` of it: a slowloris or silent connection is closed, it never holds a
//!   worker (connections are tasks, not threads);
//! - a request body of at most `max_body_bytes` (413), and the whole request, body included,
//!   within `request_timeout` (408).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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
    /// Open connections from one client address at most (behind a proxy every client has the
    /// proxy's address: raise it there).
    pub max_connections_per_address: usize,
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
            max_connections_per_address: 256,
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
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            return bad("max_connections and max_connections_per_address must be at least 1");
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

/// What a refused connection is logged with: at most one line a second, carrying how many
/// refusals were not logged since the last line (a flood of refusals must not become a flood of
/// log lines).
#[derive(Debug)]
pub(crate) struct LogThrottle {
    started: std::time::Instant,
    /// Milliseconds since `started` of the last line, plus one (0: never logged).
    last: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

impl LogThrottle {
    const INTERVAL_MS: u64 = 1000;

    pub(crate) fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            last: std::sync::atomic::AtomicU64::new(0),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether to log an event happening `now`; `Some(n)` with the `n` events not logged
    /// since the last line.
    pub(crate) fn allow(&self, now: std::time::Instant) -> Option<u64> {
        use std::sync::atomic::Ordering::SeqCst;
        let now_ms = now.saturating_duration_since(self.started).as_millis() as u64 + 1;
        let last = self.last.load(SeqCst);
        let due = last == 0 || now_ms >= last + Self::INTERVAL_MS;
        if due
            && self
                .last
                .compare_exchange(last, now_ms, SeqCst, SeqCst)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, SeqCst));
        }
        self.suppressed.fetch_add(1, SeqCst);
        None
    }
}

/// A connection's peer address, for the per-address cap.
pub(crate) trait PeerAddress {
    /// The client's IP address, if known.
    fn peer_ip(&self) -> Option<IpAddr>;
}

impl PeerAddress for tokio::net::TcpStream {
    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer_addr().ok().map(|a| a.ip())
    }
}

/// Connections held per client address.
#[derive(Debug)]
struct PerAddress {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place under the per-address cap, given back when dropped.
#[derive(Debug)]
struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut held = self.held.lock().ok()?;
        let mine = held.entry(ip).or_insert(0);
        if *mine >= self.max {
            return None;
        }
        *mine += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.table.held.lock()
            && let Some(mine) = held.get_mut(&self.ip)
        {
            *mine -= 1;
            if *mine == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// Takes a connection slot (of the server, and of the client's address) before the TLS
/// handshake; without one the connection is closed.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSlots {
    slots: Arc<Semaphore>,
    per_address: Arc<PerAddress>,
    refusals: Arc<LogThrottle>,
}

impl ConnectionSlots {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            per_address: Arc::new(PerAddress {
                max: limits.max_connections_per_address,
                held: Mutex::default(),
            }),
            refusals: Arc::new(LogThrottle::new()),
        }
    }

    fn refuse(&self, why: &'static str) -> io::Error {
        if let Some(not_logged) = self.refusals.allow(std::time::Instant::now()) {
            tracing::warn!(target: "limits", not_logged, "{why}; closing a new connection");
        }
        io::Error::other(why)
    }
}

impl<I, S> axum_server::accept::Accept<I, S> for ConnectionSlots
where
    I: PeerAddress + Send + 'static,
    S: Send + 'static,
{
    type Stream = Slotted<I>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Slotted<I>, S)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let address = match stream.peer_ip() {
            Some(ip) => match self.per_address.take(ip) {
                Some(slot) => Some(slot),
                None => {
                    return std::future::ready(Err(
                        self.refuse("connection limit of this address reached")
                    ));
                }
            },
            None => None,
        };
        std::future::ready(match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok((
                Slotted {
                    inner: stream,
                    _permit: permit,
                    _address: address,
                },
                service,
            )),
            Err(_) => Err(self.refuse("connection limit reached")),
        })
    }
}

/// Closes a connection whose first request does not begin within `timeout` after the TLS
/// handshake: hyper times a request head only from its first byte, so without this a client
/// could complete handshakes and then hold each connection (and its slot) silently forever.
#[derive(Debug, Clone)]
pub(crate) struct FirstRequestDeadline<A> {
    inner: A,
    timeout: Duration,
}

impl<A> FirstRequestDeadline<A> {
    pub(crate) fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A, I, S> axum_server::accept::Accept<I, S> for FirstRequestDeadline<A>
where
    A: axum_server::accept::Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Deadlined<A::Stream>;
    type Service = A::Service;
    type Future = Pin<
        Box<dyn std::future::Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>,
    >;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let timeout = self.timeout;
        Box::pin(async move {
            let (inner, service) = accepted.await?;
            let deadline = Some(Box::pin(tokio::time::sleep(timeout)));
            Ok((Deadlined { inner, deadline }, service))
        })
    }
}

/// A stream that fails its reads once its deadline passes before the first byte arrived.
#[derive(Debug)]
pub(crate) struct Deadlined<T> {
    inner: T,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlined<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.deadline = None;
        } else if read.is_pending()
            && let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request after the TLS handshake",
            )));
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlined<T> {
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

/// A connection holding its slots until it is dropped.
#[derive(Debug)]
pub(crate) struct Slotted<I> {
    inner: I,
    _permit: OwnedSemaphorePermit,
    _address: Option<AddressSlot>,
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
    fn refusal_logs_are_throttled_to_one_a_second_with_the_count_left_out() {
        let throttle = LogThrottle::new();
        let t0 = throttle.started;
        assert_eq!(throttle.allow(t0), Some(0));
        for i in 1..1000u64 {
            let at = t0 + Duration::from_micros(i * 900);
            assert_eq!(throttle.allow(at), None, "event {i}");
        }
        assert_eq!(throttle.allow(t0 + Duration::from_secs(1)), Some(999));
        assert_eq!(throttle.allow(t0 + Duration::from_millis(1500)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(2)), Some(1));
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
