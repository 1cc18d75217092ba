//! Getting an authorization code from the authz-server: PKCE S256 with `state` and `nonce`,
//! either by posting the user's credentials (headless) or through an [`AuthorizationUi`] the
//! application provides — [`LoopbackBrowser`] implements RFC 8252 §7.3 (a one-shot listener
//! on 127.0.0.1 receives the redirect).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A boxed future (dyn-compatible async trait methods).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Builds the authorization URL for a redirect URI.
pub type UrlFor<'a> = &'a (dyn Fn(&str) -> String + Send + Sync);

/// Where the browser was sent back to.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// The redirect URI the authorization request named.
    pub redirect_uri: String,
    /// The full URL the browser was redirected to (with `code`, `state`, `iss`).
    pub location: String,
}

/// An application's login UI.
pub trait AuthorizationUi: Send + Sync {
    /// Shows the user the authorization URL (made by `url_for` from the redirect URI the UI
    /// listens on) and returns the redirect once the user has logged in.
    fn authorize<'a>(&'a self, url_for: UrlFor<'a>) -> BoxFuture<'a, Result<Redirect, String>>;
}

/// RFC 8252 loopback redirect: listens on an ephemeral 127.0.0.1 port, hands the URL to `open`
/// (which starts a browser, or prints the URL), and takes the first redirect that arrives.
#[derive(Clone)]
pub struct LoopbackBrowser {
    open: Arc<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for LoopbackBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackBrowser").finish_non_exhaustive()
    }
}

impl LoopbackBrowser {
    /// A loopback UI that shows the URL with `open`.
    pub fn new(open: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            open: Arc::new(open),
        }
    }
}

impl AuthorizationUi for LoopbackBrowser {
    fn authorize<'a>(&'a self, url_for: UrlFor<'a>) -> BoxFuture<'a, Result<Redirect, String>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("loopback listener: {e}"))?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            let redirect_uri = format!("http://127.0.0.1:{port}/callback");
            (self.open)(&url_for(&redirect_uri));
            loop {
                let (mut stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
                let mut head = vec![0u8; 8192];
                let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
                let head = String::from_utf8_lossy(&head[..n]);
                let target = head
                    .lines()
                    .next()
                    .and_then(|line| line.strip_prefix("GET "))
                    .and_then(|rest| rest.split(' ').next())
                    .unwrap_or_default()
                    .to_owned();
                let body = "<!doctype html><title>Logged in</title><p>You can close this window.";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                if let Some(query) = target.strip_prefix("/callback?") {
                    return Ok(Redirect {
                        location: format!("{redirect_uri}?{query}"),
                        redirect_uri,
                    });
                }
            }
        })
    }
}
