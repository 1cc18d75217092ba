//! Readiness (`/readyz` of both servers): a server is ready when its store takes a write and
//! makes it durable now, not merely when it answers HTTP. A probe writes the time into the
//! `health` tree, flushes, and reads it back.
//!
//! The endpoint needs no credentials, so probes are bounded: one runs at a time however many
//! requests arrive ([`crate::flight::Flight`]), and its outcome — success or failure — answers
//! every request for [`PROBE_INTERVAL_SECS`]. A load balancer polling every second costs one
//! small write a second.

use crate::flight::{Flight, Remembered};
use crate::store::{Store, Tree};
use crate::{Error, Result};

/// Seconds one probe's outcome answers readiness requests.
pub const PROBE_INTERVAL_SECS: i64 = 1;

/// The tree the probe writes.
const HEALTH: Tree = Tree::new("health");

/// Writes `now` to the store, makes it durable, and reads it back.
pub fn probe(store: &dyn Store, now: i64) -> Result<()> {
    store.put_json(HEALTH, "probe", &now)?;
    store.flush()?;
    match store.get_json::<i64>(HEALTH, "probe")? {
        Some(read) if read >= now => Ok(()),
        _ => Err(Error::Storage(
            "the readiness probe did not read back what it wrote".into(),
        )),
    }
}

/// The store's readiness, probed at most once per [`PROBE_INTERVAL_SECS`].
#[derive(Debug, Default)]
pub struct Readiness {
    probes: Flight<()>,
}

/// Why a server is not ready (what the probe's failure said).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady(pub String);

impl Remembered for NotReady {
    fn description(&self) -> String {
        self.0.clone()
    }

    fn remembered(description: String, _retry_in_secs: u64) -> Self {
        Self(description)
    }
}

/// The answer of `/readyz`: 200 `{"status": "ready"}`, or 503 `{"status": "unavailable"}`
/// with `Retry-After` (the reason goes to the log, not to the unauthenticated caller).
pub fn response(outcome: Result<(), NotReady>) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let (status, body) = match outcome {
        Ok(()) => (StatusCode::OK, r#"{"status":"ready"}"#),
        Err(NotReady(reason)) => {
            tracing::error!(%reason, "not ready: the store does not take a durable write");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"status":"unavailable"}"#,
            )
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status != StatusCode::OK {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(PROBE_INTERVAL_SECS.unsigned_abs()),
        );
    }
    response
}

impl Readiness {
    /// Whether the store is ready at `now`: the outcome of a probe no older than
    /// [`PROBE_INTERVAL_SECS`], or of `run_probe` (a [`probe`] of the server's store, through
    /// whichever part of the server may write it).
    pub async fn check<E: std::fmt::Display>(
        &self,
        now: i64,
        run_probe: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), NotReady> {
        self.probes
            .get(
                now,
                PROBE_INTERVAL_SECS,
                |at| now - at < PROBE_INTERVAL_SECS,
                || async { run_probe().map_err(|e| NotReady(e.to_string())) },
            )
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn a_store_that_is_not_ready_answers_503_with_retry_after_and_no_reason() {
        let response = response(Err(NotReady(
            "flush failed: No space left on device".into(),
        )));
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"status":"unavailable"}"#);
        let readiness = Readiness::default();
        let failing = || Err::<(), _>("disk full");
        assert_eq!(
            readiness.check(200, failing).await,
            Err(NotReady("disk full".into()))
        );
        // Remembered for the interval: the next check in it does not probe again.
        assert_eq!(
            readiness.check(200, || Ok::<(), &str>(())).await,
            Err(NotReady("disk full".into()))
        );
        assert_eq!(readiness.check(201, || Ok::<(), &str>(())).await, Ok(()));
    }

    #[tokio::test]
    async fn a_probe_writes_durably_and_answers_for_its_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let readiness = Readiness::default();
        let store = &store;
        readiness.check(100, || probe(store, 100)).await.unwrap();
        let writes = store.writes();
        readiness.check(100, || probe(store, 100)).await.unwrap();
        assert_eq!(
            store.writes(),
            writes,
            "the second check within the interval wrote nothing"
        );
        readiness.check(101, || probe(store, 101)).await.unwrap();
        assert_eq!(store.writes(), writes + 1);
        let store: &dyn Store = store;
        assert_eq!(store.get_json::<i64>(HEALTH, "probe").unwrap(), Some(101));
    }
}
