//! Outbound reads are bounded while they are read, over HTTPS against the real server: three
//! concurrent http-01 validations each answered with a gigabyte leave the `acme-server` process
//! (the binary, its peak RSS read from /proc) under 200 MiB, and a JWKS endpoint streaming
//! without end is cut off at the document limit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::authz::{spawn_server, stop};
use common::{Account, Acme};
use proto::acme::{Authorization, Challenge, ChallengeStatus};
use proto::clock::SystemClock;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What each peer offers: a gigabyte.
const GIGABYTE: u64 = 1 << 30;

/// Writes `head`, then `body` bytes generated from one 64 KiB block (never held whole), adding
/// what was written to `sent`; stops at the first failed write (the reader went away).
async fn stream_body(mut stream: impl AsyncWrite + Unpin, head: &str, body: u64, sent: &AtomicU64) {
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let block = vec![b'x'; 64 * 1024];
    let mut left = body;
    while left > 0 {
        let n = usize::try_from(left.min(block.len() as u64)).unwrap();
        if stream.write_all(&block[..n]).await.is_err() {
            return;
        }
        sent.fetch_add(n as u64, Ordering::Relaxed);
        left -= n as u64;
    }
    let _ = stream.shutdown().await;
}

/// An HTTP peer on 127.0.0.1 answering every request 200 with a gigabyte and no length.
async fn gigabyte_peer() -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n";
                stream_body(stream, head, GIGABYTE, &counter).await;
            });
        }
    });
    (port, sent)
}

/// The peak resident set of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Orders `name` and answers its http-01 challenge.
async fn answer_http01(client: &Acme, account: &Account, name: &str) -> Challenge {
    let url = client.directory.new_order.clone();
    let order = json!({"identifiers": [{"type": "dns", "value": name}]});
    let response = client.post_as(account, &url, Some(&order)).await;
    assert_eq!(response.status(), 201);
    let order: proto::acme::Order = response.json().await.unwrap();
    let authz: Authorization = client.get(account, &order.authorizations[0]).await;
    let http = authz
        .challenges
        .iter()
        .find(|c| c.kind == "http-01")
        .unwrap();
    let response = client.answer(account, &http.url, json!({})).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gigabyte_http_01_answers_leave_the_server_under_200_mib() {
    let (http_port, sent) = gigabyte_peer().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("acme");
    let config = dir.path().join("acme.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{data}"
dev = true
[wire_dpop]
backend_jwks_url = "https://127.0.0.1:9/jwks"
[standard_orders]
enabled = true
[validation]
http_port = {http_port}
resolve_to = "127.0.0.1"
allowed_networks = ["127.0.0.0/8"]
timeout = 60
[limits]
request_timeout_secs = 120
"#,
            data = data.display()
        ),
    )
    .unwrap();
    let (child, directory) = spawn_server(
        env!("CARGO_BIN_EXE_acme-server"),
        &["--config", config.to_str().unwrap(), "serve"],
        "acme-server directory ",
    )
    .await;
    let pid = child.id().unwrap();
    let client = Acme::connect(&data.join("tls/ca.pem"), &directory).await;
    let account = client.new_account().await;
    let before = peak_rss(pid);

    let (a, b, c) = tokio::join!(
        answer_http01(&client, &account, "a.example.test"),
        answer_http01(&client, &account, "b.example.test"),
        answer_http01(&client, &account, "c.example.test"),
    );
    let peak = peak_rss(pid);
    let sent = sent.load(Ordering::Relaxed);
    eprintln!(
        "acme-server peak RSS {} MiB before, {} MiB after; the peers sent {} MiB",
        before >> 20,
        peak >> 20,
        sent >> 20
    );
    for challenge in [a, b, c] {
        assert_eq!(challenge.status, ChallengeStatus::Invalid);
        let error = challenge.error.unwrap();
        assert_eq!(error.kind, "urn:ietf:params:acme:error:incorrectResponse");
        assert!(error.detail.contains("larger than 4096 bytes"), "{error:?}");
    }
    assert!(peak < 200 << 20, "peak RSS {} MiB", peak >> 20);
    // The server stopped reading at the limit: the peers got rid of a few socket buffers'
    // worth, not of their gigabytes.
    assert!(sent < 3 * (32 << 20), "{} MiB were read", sent >> 20);
    stop(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_jwks_is_cut_off_at_the_document_limit() {
    // The backend's JWKS over HTTPS, streaming a gigabyte without a length.
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = server_kit::tls::ensure_dev_tls(pki_dir.path(), None).unwrap();
    let tls = server_kit::tls::server_config(&pki.cert, &pki.key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
                stream_body(stream, head, GIGABYTE, &counter).await;
            });
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let mut config = acme_server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        dev: true,
        domains: vec![common::DOMAIN.into()],
        trust_anchors: vec![pki.ca_cert.clone()],
        ..acme_server::Config::default()
    };
    config.wire_dpop.backend_jwks_url = Some(format!("https://127.0.0.1:{jwks_port}/jwks"));
    let server = acme_server::start(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let client = Acme::connect(server.dev_tls_ca.as_ref().unwrap(), &server.directory_url).await;
    let account = client.new_account().await;
    let client_id = proto::wire_id::ClientId::parse(&format!(
        "wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@{}",
        common::DOMAIN
    ))
    .unwrap();
    let (_, order) = client
        .new_order(&account, &common::identifiers(&client_id))
        .await;
    let (device, _) = client.authzs(&account, &order).await;
    // Any token: the keys are fetched before it is looked at.
    let response = client
        .answer(
            &account,
            &device.challenges[0].url,
            json!({"access_token": "x.y.z"}),
        )
        .await;
    // A key server that answers unusably is unavailable, not our own fault (503, not 500).
    assert_eq!(response.headers()["retry-after"], "10");
    common::assert_problem(response, 503, "connection").await;
    let sent = sent.load(Ordering::Relaxed);
    eprintln!("the JWKS peer sent {} KiB", sent >> 10);
    assert!(
        sent < 16 << 20,
        "{} MiB of the JWKS were read (limit {} KiB)",
        sent >> 20,
        acme_server::va::keys::MAX_DOCUMENT_BYTES >> 10
    );
}
