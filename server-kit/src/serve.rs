//! Serving an axum router over HTTPS on an already-bound listener, with graceful shutdown, the
//! [`crate::limits`] of the server, and one structured log event per request (method, path
//! without the query, status, time).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use crate::limits::{ConnectionSlots, FirstRequestDeadline, Limits};

use crate::{Error, Result};

/// A server task and the handle that stops it.
#[derive(Debug)]
pub struct Serving {
    /// The bound address.
    pub addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    /// Stops accepting and lets in-flight requests finish (up to 10 s).
    pub async fn shutdown(self) -> Result<()> {
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
        self.wait().await
    }

    /// Waits until the server stops.
    pub async fn wait(self) -> Result<()> {
        self.task
            .await
            .map_err(|e| Error::Server(e.to_string()))?
            .map_err(|e| Error::Server(e.to_string()))
    }
}

/// Binds `listen` (port 0 picks a free port).
pub fn bind(listen: SocketAddr) -> Result<TcpListener> {
    let listener =
        TcpListener::bind(listen).map_err(|e| Error::Config(format!("bind {listen}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(listener)
}

/// Serves `app` over TLS on `listener` within the connection-level `limits` (count, handshake
/// and head timeouts, head size; checked by [`Limits::validate`] when the server's configuration
/// is), logging each request under `service`. Handlers can extract the peer as
/// `ConnectInfo<SocketAddr>`. The request-level limits (body size, request time) are the
/// router's to apply with [`crate::limits::layer`], inside the layers that add its protocol
/// headers.
pub fn serve_tls(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    app: Router,
    service: &'static str,
    limits: &Limits,
) -> Result<Serving> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(e.to_string()))?;
    let app = app.layer(axum::middleware::from_fn_with_state(service, log_request));
    let handle = axum_server::Handle::new();
    let acceptor = FirstRequestDeadline::new(
        RustlsAcceptor::new(RustlsConfig::from_config(Arc::new(tls)))
            .handshake_timeout(Duration::from_secs(limits.handshake_timeout_secs))
            .acceptor(ConnectionSlots::new(limits)),
        Duration::from_secs(limits.header_read_timeout_secs),
    );
    let mut server = axum_server::from_tcp(listener)
        .map_err(|e| Error::Config(e.to_string()))?
        .http1_only()
        .acceptor(acceptor)
        .handle(handle.clone());
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_buf_size(limits.max_header_bytes);
    let task = tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    Ok(Serving { addr, handle, task })
}

/// Why a request was refused, as the server told the client (an ACME problem's type and
/// detail, an OAuth error and its description; never a secret): put into the response's
/// extensions by the one place that renders errors, and written into the request's log event,
/// so an operator sees why requests fail (a clock skew, a bad nonce) without a debug log.
#[derive(Debug, Clone)]
pub struct RefusalReason(pub String);

/// One event per request: method, path (never the query, which may carry codes), status, time,
/// and the refusal's reason when the response carries one ([`RefusalReason`]).
async fn log_request(
    State(service): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let reason = response
        .extensions()
        .get::<RefusalReason>()
        .map(|r| r.0.as_str());
    tracing::info!(
        target: "request",
        service,
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        reason,
        "request"
    );
    response
}
