//! A stand-in for one of the user's own HTTP services (a permission service, a remote
//! verifier): a real HTTP server on 127.0.0.1 that records every request it gets and answers
//! what the test tells it to — a status and JSON body, or nothing at all (it holds the
//! request until the client gives up or the test releases it).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::Notify;

/// How the service answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status and JSON body.
    Json(u16, Value),
    /// Nothing, until [`OwnService::release`] (then 200 with the body).
    Hold(Value),
}

/// One request the service got.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Debug)]
struct Shared {
    answer: Mutex<Answer>,
    seen: Mutex<Vec<Seen>>,
    arrived: Notify,
    release: Notify,
}

/// The running service (stopped when dropped).
#[derive(Debug)]
pub struct OwnService {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OwnService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Registered before the request is seen, so a release right after it cannot be missed.
    let released = shared.release.notified();
    let seen = Seen {
        method: method.to_string(),
        target: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
    };
    shared.seen.lock().unwrap().push(seen);
    shared.arrived.notify_waiters();
    let answer = shared.answer.lock().unwrap().clone();
    let (status, body) = match answer {
        Answer::Json(status, body) => (status, body),
        Answer::Hold(body) => {
            released.await;
            (200, body)
        }
    };
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl OwnService {
    /// Starts the service on a free loopback port, answering `answer`.
    pub async fn start(answer: Answer) -> Self {
        let shared = Arc::new(Shared {
            answer: Mutex::new(answer),
            seen: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            release: Notify::new(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared, task }
    }

    /// The URL of `path` on the service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `answer` from now on.
    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits until the service has got `count` requests in all.
    pub async fn wait_for(&self, count: usize) {
        loop {
            let arrived = self.shared.arrived.notified();
            if self.shared.seen.lock().unwrap().len() >= count {
                return;
            }
            arrived.await;
        }
    }

    /// Lets every held request answer.
    pub fn release(&self) {
        self.shared.release.notify_waiters();
    }
}

/// A loopback URL nothing listens on (a service that is down).
pub fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/down")
}
