//! Request handlers, by resource: [`directory`] (directory and nonces), [`accounts`],
//! [`orders`] (orders, authorizations, challenges, finalize, certificates) and `revocation`
//! (revocation, key change, CRLs). Shared here: the payload decoder and the JSON response with
//! `Location` and `Link` headers.

mod accounts;
mod directory;
mod orders;
mod revocation;

pub use accounts::{account, account_orders, new_account};
pub use directory::{directory, new_nonce_get, new_nonce_head, renewal_info};
pub use orders::{
    authz, certificate, certificate_alternate, challenge, finalize, new_order, order,
};
pub use revocation::{crl, key_change, names_crl, revoke_cert};

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Decodes a JSON payload; a POST-as-GET (empty payload) is refused where a body is required.
fn payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.is_empty() {
        return Err(Error::malformed("this request needs a payload"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Error::malformed(format!("the payload is not a valid request object: {e}")))
}

/// Requires a POST-as-GET.
fn post_as_get(bytes: &[u8]) -> Result<()> {
    if bytes.is_empty() {
        Ok(())
    } else {
        Err(Error::malformed(
            "this resource is read with POST-as-GET (empty payload)",
        ))
    }
}

/// A JSON response with optional `Location` and `Link` relations.
fn json_response<T: Serialize>(
    status: StatusCode,
    body: &T,
    location: Option<&str>,
    links: &[(&str, &str)],
) -> Response {
    with_links((status, Json(body)).into_response(), location, links)
}

/// Adds `Location` and `Link: <url>;rel="..."` headers (relation names quoted).
fn with_links(mut response: Response, location: Option<&str>, links: &[(&str, &str)]) -> Response {
    let headers = response.headers_mut();
    if let Some(Ok(value)) = location.map(HeaderValue::from_str) {
        headers.insert(header::LOCATION, value);
    }
    for (url, rel) in links {
        if let Ok(value) = HeaderValue::from_str(&format!("<{url}>;rel=\"{rel}\"")) {
            headers.append(header::LINK, value);
        }
    }
    response
}
