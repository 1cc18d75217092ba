//! The acme-server's key fetches with the backend frozen (SIGSTOP: it accepts connections and
//! answers nothing): twenty validations needing the backend's keys at once wait for one fetch
//! — one timeout, not one each — and all get `Unavailable` (503 `connection` with
//! `Retry-After`, not `serverInternal`); while the failure is remembered they fail at once; once
//! the backend runs again (SIGCONT) and the memory is over, the keys are fetched.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use acme_server::error::Error;
use acme_server::va::keys::{FAILURE_MEMORY_SECONDS, KeySource, Remote};
use proto::clock::{Clock, SystemClock};

/// The timeout of one key fetch here.
const TIMEOUT: Duration = Duration::from_secs(1);

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_fetches_from_a_frozen_backend_share_one_timeout_and_answer_503() {
    let dir = tempfile::tempdir().unwrap();
    let (authz, url, ca) = support::start_authz(dir.path(), 0, "", None).await;
    let http = server_kit::tls::https_client(&[ca.into()], TIMEOUT).unwrap();
    let source = KeySource::new(Vec::new(), Some(Remote::Jwks(format!("{url}/jwks"))), http);
    let pid = authz.server.child.id().unwrap();
    signal(pid, "-STOP");

    let now = SystemClock.now();
    let started = Instant::now();
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.keys(now, false).await })
        })
        .collect();
    for caller in callers {
        match caller.await.unwrap() {
            Err(Error::Unavailable {
                retry_after_secs, ..
            }) => assert!(retry_after_secs >= 1),
            other => panic!("not unavailable: {other:?}"),
        }
    }
    let waited = started.elapsed();
    assert!(
        waited < TIMEOUT * 5,
        "twenty callers waited {waited:?}: they queued instead of sharing one fetch"
    );
    let (status, problem) = Error::Unavailable {
        detail: "x".into(),
        retry_after_secs: 3,
    }
    .to_problem();
    assert_eq!(
        (status.as_u16(), problem.kind.as_str()),
        (503, "urn:ietf:params:acme:error:connection")
    );

    // Remembered: the next caller fails at once, without another timeout.
    let at_once = Instant::now();
    assert!(matches!(
        source.keys(now + 1, false).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(at_once.elapsed() < TIMEOUT, "{:?}", at_once.elapsed());

    // Running again, and the memory over: the keys come.
    signal(pid, "-CONT");
    let keys = source
        .keys(now + FAILURE_MEMORY_SECONDS, false)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    authz.terminate().await;
}
