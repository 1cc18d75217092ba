//! A body over `[limits] max_body_bytes` sent whole before the client reads, the way simple
//! clients do: the 413 problem document must reach the client every time, over real TLS on
//! 127.0.0.1, never a reset, a broken pipe or a TLS EOF in its place; with a declared
//! `Content-Length` and chunked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Env;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// Sends `request` on a fresh TLS connection, all of it before reading, then reads until the
/// server closes; what was read, or why the exchange failed.
async fn send_whole_then_read(env: &Env, request: &[u8]) -> Result<String, std::io::Error> {
    let acme = env.acme.as_ref().unwrap();
    let ca = acme.dev_tls_ca.clone().unwrap();
    let config = server_kit::tls::client_config(std::slice::from_ref(&ca)).unwrap();
    let tcp = tokio::net::TcpStream::connect(acme.addr).await?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await?;
    tls.write_all(request).await?;
    tls.flush().await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Sends `request` to newOrder `rounds` times, each on its own connection and bounded in time;
/// every exchange that did not end in the 413 problem document.
async fn rounds_without_the_413(env: &Env, request: &[u8], rounds: usize) -> Vec<String> {
    let mut failures = Vec::new();
    for round in 0..rounds {
        let exchange =
            tokio::time::timeout(Duration::from_secs(20), send_whole_then_read(env, request)).await;
        match exchange {
            Ok(Ok(answer))
                if answer.starts_with("HTTP/1.1 413")
                    && answer.contains("application/problem+json")
                    && answer.contains("urn:ietf:params:acme:error:malformed") => {}
            Ok(Ok(answer)) => failures.push(format!("round {round}: {answer:.300}")),
            Ok(Err(e)) => failures.push(format!("round {round}: {e}")),
            Err(_) => failures.push(format!("round {round}: no answer within 20 s")),
        }
    }
    failures
}

/// The request head for newOrder, with `framing` (`content-length: N` or
/// `transfer-encoding: chunked`).
fn new_order_head(env: &Env, framing: &str) -> Vec<u8> {
    let url = &env.client.directory.new_order;
    let path = &url[url.find("/acme/").unwrap()..];
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/jose+json\r\n\
         {framing}\r\nconnection: close\r\n\r\n"
    )
    .into_bytes()
}

const BODY: usize = 200 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_sent_whole_always_gets_the_413_problem_document() {
    let env = Env::start().await;
    let mut request = new_order_head(&env, &format!("content-length: {BODY}"));
    request.extend(std::iter::repeat_n(b'x', BODY));
    let failures = rounds_without_the_413(&env, &request, 50).await;
    assert!(
        failures.is_empty(),
        "{} of 50 failed: {failures:#?}",
        failures.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_chunked_body_sent_whole_always_gets_the_413_problem_document() {
    let env = Env::start().await;
    let mut request = new_order_head(&env, "transfer-encoding: chunked");
    let chunk = 4096;
    for _ in 0..BODY / chunk {
        request.extend(format!("{chunk:x}\r\n").as_bytes());
        request.extend(std::iter::repeat_n(b'x', chunk));
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    let failures = rounds_without_the_413(&env, &request, 50).await;
    assert!(
        failures.is_empty(),
        "{} of 50 failed: {failures:#?}",
        failures.len()
    );
}
