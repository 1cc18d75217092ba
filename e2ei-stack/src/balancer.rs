//! A load balancer for replicas on one machine (the replica tests and `e2ei-bench enroll
//! --replicas`): it terminates TLS with the servers' own certificate and sends each request to
//! the next replica in turn, so an enrollment's consecutive requests land on different
//! replicas. Bodies are read whole (up to 1 MiB) and forwarded with every header but `Host`
//! and the framing ones. A replica that refuses the connection is skipped for the next one.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The largest body forwarded.
const MAX_BODY: usize = 1 << 20;

/// Round-robin over replicas.
#[derive(Debug)]
pub struct Balancer {
    /// The replicas' base URLs (`https://127.0.0.1:port`).
    pub backends: Vec<String>,
    next: AtomicUsize,
    served: Vec<AtomicUsize>,
    http: reqwest::Client,
}

impl Balancer {
    /// Requests each replica has been sent.
    pub fn served(&self) -> Vec<usize> {
        self.served
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .collect()
    }
}

/// A running balancer.
#[derive(Debug)]
pub struct Running {
    /// What it forwards to, and how much.
    pub balancer: Arc<Balancer>,
    _serving: server_kit::serve::Serving,
}

/// Serves on `listener` with the dev TLS certificate of the replicas' shared data directory
/// `data_dir`, forwarding to `backends` (addresses whose TLS certificates chain to `roots`).
pub fn start(
    listener: TcpListener,
    data_dir: &Path,
    backends: &[SocketAddr],
    roots: &[std::path::PathBuf],
) -> Result<Running> {
    let balancer = Arc::new(Balancer {
        backends: backends.iter().map(|a| format!("https://{a}")).collect(),
        next: AtomicUsize::new(0),
        served: backends.iter().map(|_| AtomicUsize::new(0)).collect(),
        http: server_kit::tls::https_client(roots, std::time::Duration::from_secs(60))?,
    });
    let dev = server_kit::tls::ensure_dev_tls(data_dir, None)?;
    let tls = server_kit::tls::server_config(&dev.cert, &dev.key)?;
    let router = axum::Router::new()
        .fallback(forward)
        .with_state(balancer.clone());
    let limits = server_kit::limits::Limits {
        max_connections_per_address: 100_000,
        max_body_bytes: MAX_BODY,
        ..server_kit::limits::Limits::default()
    };
    let serving = server_kit::serve::serve_tls(listener, tls, router, "balancer", &limits)?;
    Ok(Running {
        balancer,
        _serving: serving,
    })
}

async fn forward(State(balancer): State<Arc<Balancer>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // A replica that refuses the connection (stopped, restarting) is skipped, as a balancer's
    // health check would: the request never reached it. Any other failure is the answer.
    let mut answer = None;
    for _ in 0..balancer.backends.len() {
        let index = balancer.next.fetch_add(1, Ordering::SeqCst) % balancer.backends.len();
        let mut outgoing = balancer
            .http
            .request(
                parts.method.clone(),
                format!("{}{path}", balancer.backends[index]),
            )
            .body(body.clone());
        for (name, value) in &parts.headers {
            if name != "host" && name != "content-length" && name != "transfer-encoding" {
                outgoing = outgoing.header(name, value);
            }
        }
        match outgoing.send().await {
            Err(e) if e.is_connect() => continue,
            sent => {
                balancer.served[index].fetch_add(1, Ordering::SeqCst);
                answer = Some(sent);
                break;
            }
        }
    }
    let Some(Ok(answer)) = answer else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    match answer.bytes().await {
        Ok(bytes) => response
            .body(Body::from(bytes))
            .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response()),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
