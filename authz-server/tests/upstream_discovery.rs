//! An upstream's discovery document, fetched when logins through it start: one fetch however
//! many start at once (node-oidc-provider, `tests/interop/upstream_idp.mjs`, counting the
//! requests for its discovery document and holding them until the test lets them go), and
//! upstreams that answer no call usefully — stand-ins on 127.0.0.1 that count their
//! connections: a document over 64 KiB refused, a silent upstream given up after its timeout,
//! and its failure remembered for `failure_cache_secs`, during which starts fail at once
//! without calling it, until the injected clock passes the window.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::upstream::*;
use common::*;
use server_kit::rate_limit::Rate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_simultaneous_starts_fetch_the_discovery_document_once() {
    let setup = Setup {
        idp_env: vec![("HOLD_DISCOVERY", "1".into())],
        ..Setup::oidc("create")
    };
    let mut f = Federation::launch(
        setup,
        |c| {
            c.rate_limits.upstream_logins_per_ip = Rate::new(1, 100);
            c.limits.max_connections_per_address = 1000;
        },
        |_| {},
    )
    .await;
    let page = f.login_page(&Pkce::new()).await;
    let form = Arc::new(start_form(&page));
    let url = f.h.url("/upstream/start");
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..101 {
        let (browser, url, form) = (f.browser.clone(), url.clone(), form.clone());
        starts.spawn(async move {
            let response = browser.post(&url).form(&*form).send().await.unwrap();
            response.status().as_u16()
        });
    }
    // While the upstream holds its discovery answer, only a start refused by the limit (a
    // burst of 100) can end: once one has, the other hundred have all passed the limit, on
    // their way to the discovery document.
    assert_eq!(starts.join_next().await.unwrap().unwrap(), 429);
    f.idp.expect_line("discovery held").await;
    let released = f
        .idp
        .test_route(reqwest::Method::POST, "/test/release-discovery")
        .await;
    assert_eq!(released["released"], 1);
    let mut sent = 0;
    while let Some(status) = starts.join_next().await {
        assert_eq!(status.unwrap(), 303);
        sent += 1;
    }
    assert_eq!(sent, 100);
    let counted = f
        .idp
        .test_route(reqwest::Method::GET, "/test/discoveries")
        .await;
    assert_eq!(counted["discoveries"], 1);
}

/// A loopback peer that answers every connection with `answer` (and then `body_bytes` of
/// filler), or with nothing at all when `answer` is empty; its URL and how many connections it
/// has accepted.
fn peer(answer: &'static str, body_bytes: usize) -> (String, Arc<AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    std::thread::spawn(move || {
        let mut silent = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            if answer.is_empty() {
                silent.push(stream);
                continue;
            }
            let _ = stream.write_all(answer.as_bytes());
            let block = [b' '; 16 * 1024];
            let mut left = body_bytes;
            while left > 0 {
                let n = left.min(block.len());
                if stream.write_all(&block[..n]).is_err() {
                    break;
                }
                left -= n;
            }
        }
    });
    (url, connections)
}

/// Our server with one upstream at `issuer` that answers no call usefully (its calls time out
/// after `timeout_secs`; starts not limited), and a browser holding our login page's start form.
struct Starts {
    h: Harness,
    browser: reqwest::Client,
    form: Arc<Vec<(String, String)>>,
}

impl Starts {
    async fn new(issuer: &str, timeout_secs: u64) -> Self {
        let secrets = tempfile::tempdir().unwrap();
        let secret_file = secrets.path().join("corp-secret");
        server_kit::files::write_private(&secret_file, UPSTREAM_SECRET.as_bytes()).unwrap();
        let mut upstream: authz_server::federation::UpstreamConfig =
            toml::from_str(&upstream_config(issuer, &secret_file, "create")).unwrap();
        upstream.timeout_secs = timeout_secs;
        let h = Harness::start_with(|c| {
            c.upstream = vec![upstream];
            c.rate_limits.upstream_logins_per_ip = Rate::UNLIMITED;
            c.limits.max_connections_per_address = 1000;
        })
        .await;
        let browser = browser(&h);
        let page = login_page(&browser, &h, &Pkce::new(), "openid").await;
        let form = Arc::new(start_form(&page));
        Self { h, browser, form }
    }

    /// What the demo client hears from `n` starts at once: each one's error and description.
    async fn errors(&self, n: usize) -> Vec<(String, String)> {
        let mut starts = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (browser, url, form) = (
                self.browser.clone(),
                self.h.url("/upstream/start"),
                self.form.clone(),
            );
            starts.spawn(async move {
                let response = browser.post(&url).form(&*form).send().await.unwrap();
                assert!(response.headers().get("set-cookie").is_none());
                client_error(&response)
            });
        }
        starts.join_all().await
    }

    /// What the demo client hears from one start.
    async fn error(&self) -> (String, String) {
        self.errors(1).await.pop().unwrap()
    }
}

const DISCOVERY_FAILED: &str = "the identity provider Corp <IdP> could not be used: discovery: ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_discovery_document_is_refused_after_64_kib() {
    let (issuer, _) = peer(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n",
        1 << 30,
    );
    let (error, description) = Starts::new(&issuer, 10).await.error().await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(
        description.starts_with(DISCOVERY_FAILED)
            && description.contains("larger than 65536 bytes"),
        "{description}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_is_given_up_after_its_timeout() {
    let (issuer, _) = peer("", 0);
    let started = std::time::Instant::now();
    let (error, description) = Starts::new(&issuer, 1).await.error().await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(description.starts_with(DISCOVERY_FAILED), "{description}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_upstreams_failure_is_remembered_and_it_is_tried_again_after_the_window() {
    let (issuer, connections) = peer("", 0);
    let starts = Starts::new(&issuer, 1).await;
    let connections = || connections.load(Ordering::SeqCst);
    // The first start waits out the timeout.
    let (error, failure) = starts.error().await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(failure.starts_with(DISCOVERY_FAILED), "{failure}");
    assert_eq!(connections(), 1);
    // The next 99, at once, hear of that failure without calling the upstream.
    let remembered = format!("{failure} (it failed moments ago; it is tried again in 10 s)");
    for (error, description) in starts.errors(99).await {
        assert_eq!(error, "temporarily_unavailable");
        assert_eq!(description, remembered);
    }
    assert_eq!(connections(), 1);
    // Once failure_cache_secs (10 by default) have passed, the upstream is tried again, once
    // for a hundred starts at once: one waits out the timeout, the others share its failure.
    starts.h.clock.advance(10);
    let answers = starts.errors(100).await;
    assert_eq!(connections(), 2);
    assert!(answers.iter().all(|(e, _)| e == "temporarily_unavailable"));
    let plain = answers.iter().filter(|(_, d)| *d == failure).count();
    let shared = answers.iter().filter(|(_, d)| *d == remembered).count();
    assert_eq!((plain, shared), (1, 99), "{answers:?}");
}
