//! dns-01 (RFC 8555 §8.4): a TXT record at `_acme-challenge.<name>` must hold
//! base64url(SHA-256(key authorization)).

use std::net::SocketAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::dns;
use crate::error::{Error, ProblemType, Result};

/// Looks the record up at `server`.
pub async fn check(
    server: Option<SocketAddr>,
    name: &str,
    keyauth: &str,
    timeout: Duration,
) -> Result<()> {
    let server = server.ok_or_else(|| {
        Error::problem(ProblemType::Dns, "no DNS server is configured for dns-01")
    })?;
    let record = format!("_acme-challenge.{name}");
    let expected = proto::b64::encode(Sha256::digest(keyauth.as_bytes()));
    let found = dns::txt(server, &record, timeout)
        .await
        .map_err(|e| Error::problem(ProblemType::Dns, format!("TXT {record}: {e}")))?;
    if found.iter().any(|txt| txt == &expected) {
        Ok(())
    } else if found.is_empty() {
        Err(Error::problem(
            ProblemType::Unauthorized,
            format!("no TXT record at {record}"),
        ))
    } else {
        Err(Error::problem(
            ProblemType::Unauthorized,
            format!("no TXT record at {record} holds this challenge's digest"),
        ))
    }
}
