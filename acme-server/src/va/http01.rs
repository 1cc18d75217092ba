//! http-01 (RFC 8555 §8.3): `GET http://<name>:<port>/.well-known/acme-challenge/<token>` must
//! answer 200 with the key authorization. Redirects are not followed.

use std::net::IpAddr;

use crate::error::{Error, ProblemType, Result};

/// Most of the response body read.
const MAX_BODY: usize = 4096;

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
    let path = format!("/.well-known/acme-challenge/{token}");
    let url = format!("http://{authority}{path}");
    let shown = format!("http://{host}{path}");
    let response = http
        .get(&url)
        .header(reqwest::header::HOST, host)
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
    let body = response
        .bytes()
        .await
        .map_err(|e| Error::problem(ProblemType::Connection, format!("reading {shown}: {e}")))?;
    let body = &body[..body.len().min(MAX_BODY)];
    if String::from_utf8_lossy(body).trim() != keyauth {
        return Err(Error::problem(
            ProblemType::IncorrectResponse,
            format!("{shown} did not serve the key authorization of this challenge"),
        ));
    }
    Ok(())
}
