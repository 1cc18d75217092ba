//! The limits of `serve_tls` over real TLS on 127.0.0.1: connection cap, slowloris heads, head
//! size, declared and chunked bodies, slow bodies. Each server's own rendering of the refusals is
//! tested in its crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use server_kit::limits::{Limits, Refusal};
use server_kit::serve::{Serving, bind, serve_tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

fn render(refusal: Refusal) -> Response {
    (
        refusal.status(),
        [("content-type", "application/json")],
        format!("{{\"refused\":\"{refusal}\"}}"),
    )
        .into_response()
}

struct Server {
    serving: Serving,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = server_kit::tls::ensure_dev_tls(dir.path(), None).unwrap();
        let tls = server_kit::tls::server_config(&pki.cert, &pki.key).unwrap();
        let app = Router::new().route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        );
        let app = server_kit::limits::layer(app, &limits, render);
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let serving = serve_tls(listener, tls, app, "limits-test", &limits).unwrap();
        Self {
            serving,
            ca: pki.ca_cert,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/echo", self.serving.addr.port())
    }

    fn client(&self) -> reqwest::Client {
        server_kit::tls::https_client(std::slice::from_ref(&self.ca), Duration::from_secs(20))
            .unwrap()
    }

    /// A raw TLS connection, to send exactly what a test wants.
    async fn tls(&self) -> std::io::Result<TlsStream<TcpStream>> {
        self.tls_from([127, 0, 0, 1].into()).await
    }

    /// A raw TLS connection from `local` (an address of 127.0.0.0/8: another client).
    async fn tls_from(&self, local: std::net::IpAddr) -> std::io::Result<TlsStream<TcpStream>> {
        let config = server_kit::tls::client_config(std::slice::from_ref(&self.ca)).unwrap();
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((local, 0).into())?;
        let tcp = socket.connect(self.serving.addr).await?;
        TlsConnector::from(Arc::new(config))
            .connect("127.0.0.1".try_into().unwrap(), tcp)
            .await
    }

    /// A request on a connection of its own (a pooled client could reuse a held connection).
    async fn echo_ok(&self) -> bool {
        let Ok(mut stream) = self.tls().await else {
            return false;
        };
        if stream
            .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi")
            .await
            .is_err()
        {
            return false;
        }
        read_to_close(&mut stream).await.starts_with("HTTP/1.1 200")
    }
}

/// Reads until the server closes the connection (bounded), returning what it sent.
async fn read_to_close(stream: &mut TlsStream<TcpStream>) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut out))
        .await
        .expect("the server did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_slowloris_head_is_cut_at_the_header_timeout_and_others_are_served_meanwhile() {
    let server = Server::start(Limits {
        header_read_timeout_secs: 1,
        ..Limits::default()
    })
    .await;
    let mut slow = server.tls().await.unwrap();
    let started = Instant::now();
    slow.write_all(b"POST /echo HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
        .await
        .unwrap();
    // While the slow head is pending, a normal client is served.
    assert!(server.echo_ok().await);
    let answer = read_to_close(&mut slow).await;
    let waited = started.elapsed();
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_slots_come_back() {
    let server = Server::start(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let mut held = vec![server.tls().await.unwrap(), server.tls().await.unwrap()];
    // The third connection is closed before its handshake completes.
    assert!(
        server.tls().await.is_err(),
        "a third connection was accepted"
    );
    // A held connection still works.
    held[0]
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
        )
        .await
        .unwrap();
    assert!(
        read_to_close(&mut held[0])
            .await
            .starts_with("HTTP/1.1 200")
    );
    drop(held);
    // Closed connections give their slots back (the server notices the close asynchronously,
    // so try a bounded number of times).
    let mut served = false;
    for _ in 0..100 {
        if server.echo_ok().await {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served, "slots were not released");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_after_the_handshake_is_closed_at_the_header_timeout() {
    let server = Server::start(Limits {
        header_read_timeout_secs: 1,
        ..Limits::default()
    })
    .await;
    // The TLS handshake completes, then not one byte of a request.
    let mut idle = server.tls().await.unwrap();
    let started = Instant::now();
    let answer = read_to_close(&mut idle).await;
    let waited = started.elapsed();
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    // Meanwhile nothing else was held up.
    assert!(server.echo_ok().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_slot() {
    let server = Arc::new(
        Server::start(Limits {
            max_connections: 300,
            max_connections_per_address: 100,
            ..Limits::default()
        })
        .await,
    );
    // 150 connections from one address at once: 100 get through the TLS handshake, the rest
    // are closed before it.
    let attempts: Vec<_> = (0..150)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.tls().await })
        })
        .collect();
    let mut held = Vec::new();
    let mut closed = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(stream) => held.push(stream),
            Err(_) => closed += 1,
        }
    }
    assert_eq!(held.len(), 100, "{closed} closed");
    // Another address is still served while the first holds its whole share.
    let other = server.tls_from([127, 0, 0, 2].into()).await;
    assert!(other.is_ok(), "another address was refused: {other:?}");
    assert!(
        server.tls().await.is_err(),
        "a 101st connection was accepted"
    );
    // The held connections still work.
    held[0]
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
        )
        .await
        .unwrap();
    assert!(
        read_to_close(&mut held[0])
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_in_the_servers_format_declared_or_chunked() {
    let server = Server::start(Limits {
        max_body_bytes: 1000,
        ..Limits::default()
    })
    .await;
    let client = server.client();
    let ok = client
        .post(server.url())
        .body(vec![b'a'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1000");

    let declared = client
        .post(server.url())
        .body(vec![b'a'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert!(
        declared
            .text()
            .await
            .unwrap()
            .contains("larger than 1000 bytes")
    );

    let mut raw = server.tls().await.unwrap();
    let chunk = "b".repeat(1500);
    raw.write_all(
        format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut raw).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("{\"refused\":\"the request body is larger than 1000 bytes\"}"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_at_the_request_timeout() {
    let server = Server::start(Limits {
        request_timeout_secs: 1,
        ..Limits::default()
    })
    .await;
    let mut raw = server.tls().await.unwrap();
    raw.write_all(
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\nconnection: close\r\n\r\nonly ten.",
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut raw).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not complete within 1 s"), "{answer}");
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let server = Server::start(Limits::default()).await;
    let mut raw = server.tls().await.unwrap();
    let big = "v".repeat(20 * 1024);
    let _ = raw
        .write_all(format!("POST /echo HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\n\r\n").as_bytes())
        .await;
    let answer = read_to_close(&mut raw).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    assert!(server.echo_ok().await);
}
