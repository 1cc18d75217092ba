//! `/readyz` of both servers: ready means the store took a durable write just now. A hundred
//! simultaneous probes of each server all answer `{"status": "ready"}`, uncached, while the
//! store is written at most once a second (`server_kit::health`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use e2ei_stack::stack::Stack;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_simultaneous_probes_of_each_server_say_ready() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    let http =
        server_kit::tls::https_client(&stack.tls_roots(), std::time::Duration::from_secs(10))
            .unwrap();
    for base in [stack.authz.base_url.clone(), stack.acme.base_url.clone()] {
        let probes: Vec<_> = (0..100)
            .map(|_| {
                let (http, url) = (http.clone(), format!("{base}/readyz"));
                tokio::spawn(async move { http.get(url).send().await.unwrap() })
            })
            .collect();
        for probe in probes {
            let response = probe.await.unwrap();
            assert_eq!(response.status(), 200, "{base}");
            assert_eq!(response.headers()["cache-control"], "no-store");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body, json!({"status": "ready"}));
        }
    }
    stack.shutdown().await.unwrap();
}
