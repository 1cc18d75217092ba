//! http-01 (RFC 8555 §8.3): `GET http://<name>:<port>/.well-known/acme-challenge/<token>` must
//! answer 200 with the key authorization. The request goes to the one address the validation
//! authority admitted (never to a name reqwest would resolve itself), redirects are not
//! followed, no proxy is used, and at most [`MAX_BODY`] bytes of the answer are read
//! ([`server_kit::fetch::read_body`]): a longer answer is refused, not read and cut.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ProblemType, Result};

/// Most of the response body read: a key authorization is 87 bytes, with room for whitespace.
pub const MAX_BODY: usize = 4096;

/// A resolver that resolves nothing: every request of the validation client names an address
/// the policy admitted, so a host name reaching reqwest (a redirect, a later change) fails
/// instead of being resolved behind the address policy's back.
#[derive(Debug)]
struct NoNames;

impl reqwest::dns::Resolve for NoNames {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async { Err("validation connects to admitted addresses only".into()) })
    }
}

/// The HTTP client of http-01: plain HTTP to addresses only, no proxy, no redirects, no idle
/// connections kept to validation targets, everything within `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(server_kit::tls::client_config(&[])?)
        .dns_resolver(Arc::new(NoNames))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(timeout)
        .build()
        .map_err(|e| Error::Config(format!("http-01 client: {e}")))
}

/// Fetches the key authorization from `ip:port`, sending `host` as the Host header.
pub async fn check(
    http: &reqwest::Client,
    ip: IpAddr,
    port: u16,
    host: &str,
    token: &str,
    keyauth: &str,
) -> Result<()> {
    let authority = match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    };
    // An IPv6 identifier is written in brackets in a Host header (RFC 3986 §3.2.2).
    let host = match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]"),
        Err(_) => host.to_owned(),
    };
    let path = format!("/.well-known/acme-challenge/{token}");
    let url = format!("http://{authority}{path}");
    let shown = format!("http://{host}{path}");
    let response = http
        .get(&url)
        .header(reqwest::header::HOST, &host)
        .send()
        .await
        .map_err(|e| {
            Error::problem(
                ProblemType::Connection,
                format!("fetching {shown} from {authority}: {e}"),
            )
        })?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(Error::problem(
            ProblemType::Unauthorized,
            format!("{shown} answered HTTP {status}"),
        ));
    }
    let body = server_kit::fetch::read_body(response, MAX_BODY)
        .await
        .map_err(|e| {
            let detail = match e {
                server_kit::Error::Fetch(detail) => detail,
                other => other.to_string(),
            };
            Error::problem(ProblemType::IncorrectResponse, format!("{shown}: {detail}"))
        })?;
    if String::from_utf8_lossy(&body).trim() != keyauth {
        return Err(Error::problem(
            ProblemType::IncorrectResponse,
            format!("{shown} did not serve the key authorization of this challenge"),
        ));
    }
    Ok(())
}
