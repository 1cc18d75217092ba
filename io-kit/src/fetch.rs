//! Bounded reads of what other servers answer. Every outbound fetch of the servers and of the
//! device SDK (JWKS and OpenID discovery documents, http-01 validation, upstream and
//! third-party identity providers, token endpoints) reads its response body through
//! [`read_body`] (or [`get_json`], built on it), never with `Response::bytes`/`text`/`json`,
//! which read the whole body before anyone can look at its size. `server-kit` re-exports it.
//!
//! A body whose `Content-Length` announces more than the limit is refused before any of it is
//! read; a body without a length is read chunk by chunk and refused as soon as it passes the
//! limit, and dropping the response closes the connection. A peer can therefore make one fetch
//! hold at most `limit` bytes plus one chunk of the HTTP stack's read buffer, however much it
//! sends. Time is bounded by the client's own timeout.
//!
//! Failures are [`Error::Fetch`] with a message the caller puts into its own error.

use serde::de::DeserializeOwned;

use crate::{Error, Result};

fn failure(detail: impl std::fmt::Display) -> Error {
    Error::Fetch(detail.to_string())
}

/// The body of `response`, refused when it is longer than `limit` bytes.
pub async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>> {
    let too_large = || failure(format!("the response body is larger than {limit} bytes"));
    let announced = response.content_length();
    if announced.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    let expected = announced.and_then(|length| usize::try_from(length).ok());
    let mut body = Vec::with_capacity(expected.unwrap_or(0).min(limit));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failure(format!("reading the response body: {e}")))?
    {
        if chunk.len() > limit - body.len() {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `GET url` with `client`: a 2xx answer whose JSON body (at most `limit` bytes) parses as `T`.
pub async fn get_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    limit: usize,
) -> Result<T> {
    let fail = |detail: &dyn std::fmt::Display| failure(format!("GET {url}: {detail}"));
    let response = client.get(url).send().await.map_err(|e| fail(&e))?;
    if !response.status().is_success() {
        return Err(fail(&response.status()));
    }
    let body = read_body(response, limit).await.map_err(|e| match e {
        Error::Fetch(detail) => fail(&detail),
        other => other,
    })?;
    serde_json::from_slice(&body).map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Bytes a peer sends in all: far more than any limit here.
    const ENDLESS: u64 = 1 << 30;

    /// A loopback HTTP peer answering one request per connection with `head` and then `body`
    /// bytes of generated content (never held in memory); counts what it managed to send.
    fn peer(head: &'static str, body: u64) -> (String, Arc<AtomicU64>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/doc", listener.local_addr().unwrap());
        let sent = Arc::new(AtomicU64::default());
        let counter = sent.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                if stream.write_all(head.as_bytes()).is_err() {
                    continue;
                }
                let block = [b'x'; 16 * 1024];
                let mut left = body;
                while left > 0 {
                    let n = usize::try_from(left.min(block.len() as u64)).unwrap();
                    if stream.write_all(&block[..n]).is_err() {
                        break;
                    }
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    left -= n as u64;
                }
            }
        });
        (url, sent)
    }

    fn client() -> reqwest::Client {
        crate::https::https_client(&[], std::time::Duration::from_secs(10)).unwrap()
    }

    #[tokio::test]
    async fn a_streamed_body_is_refused_once_it_passes_the_limit() {
        let (url, sent) = peer("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", ENDLESS);
        let response = client().get(&url).send().await.unwrap();
        let e = read_body(response, 64 * 1024).await.unwrap_err();
        assert!(e.to_string().contains("larger than 65536 bytes"), "{e}");
        // The peer was cut off after the limit and what the sockets buffer, not 1 GiB later.
        assert!(sent.load(Ordering::Relaxed) < 32 << 20);
    }

    #[tokio::test]
    async fn an_announced_length_over_the_limit_is_refused_before_reading() {
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\nconnection: close\r\n\r\n";
        let (url, _) = peer(head, ENDLESS);
        let response = client().get(&url).send().await.unwrap();
        let e = read_body(response, 1024).await.unwrap_err();
        assert!(e.to_string().contains("larger than 1024 bytes"), "{e}");
    }

    #[tokio::test]
    async fn bodies_up_to_the_limit_are_read_whole() {
        let (url, _) = peer("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", 4096);
        let response = client().get(&url).send().await.unwrap();
        assert_eq!(read_body(response, 4096).await.unwrap().len(), 4096);
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]";
        let (url, _) = peer(head, 0);
        let parsed: Vec<u8> = get_json(&client(), &url, 2).await.unwrap();
        assert!(parsed.is_empty());
        let (url, _) = peer("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", 0);
        let e = get_json::<Vec<u8>>(&client(), &url, 2).await.unwrap_err();
        assert!(e.to_string().contains("404"), "{e}");
    }
}
