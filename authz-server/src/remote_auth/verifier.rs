//! Asking a remote verifier. What the client presented is checked first — every parameter of
//! the verifier, each at most `max_param_length` bytes of printable ASCII without space
//! ([`RemoteVerifier::presented`]), and none may make a segment of the URL's path `.` or `..`
//! (which would climb the template's path); the values are percent-encoded into the URL
//! template (and, for `POST`, sent as a form body too). The answer ([`RemoteVerifier::ask`]):
//!
//! - a 2xx with a JSON object: the user is known — its `subject_field` (text, at most 255 bytes)
//!   is the subject, its `name_field` the name;
//! - 204 or a 4xx: the verifier says no;
//! - anything else, a timeout (`timeout_ms` for the whole call), a failed connection, a body
//!   longer than `max_response_bytes` (refused while it is read) or one without a usable
//!   subject: the verifier is unavailable (503 `temporarily_unavailable`).
//!
//! The values are never logged, and `Debug` leaves them out: a server hash is a one-time secret.

use std::collections::HashMap;

use proto::secret::SecretString;
use serde_json::{Map, Value};

use super::{Method, RemoteVerifier};
use crate::error::{Error, Result};
use crate::federation::ClaimMap;
use crate::federation::claims::{UpstreamIdentity, text_value};

/// The claims an identity from a verifier is built of (see [`identity`]).
pub(super) fn claim_map() -> ClaimMap {
    ClaimMap {
        subject: Some("sub".into()),
        handle: "handle".into(),
        display_name: "name".into(),
        ..ClaimMap::default()
    }
}

/// What a client presented for a verifier, checked (values redacted in `Debug`).
#[derive(Debug)]
pub struct Presented {
    values: Vec<(String, SecretString)>,
}

/// What the verifier said.
#[derive(Debug)]
pub enum Answer {
    /// The user is known: the verified identity.
    Known(UpstreamIdentity),
    /// The verifier says no.
    Unknown,
}

/// `template` with each `{param}` replaced by its value, percent-encoded.
fn fill(template: &str, presented: &Presented) -> String {
    presented
        .values
        .iter()
        .fold(template.to_owned(), |url, (name, value)| {
            let encoded: String =
                url::form_urlencoded::byte_serialize(value.expose().as_bytes()).collect();
            url.replace(&format!("{{{name}}}"), &encoded)
        })
}

impl RemoteVerifier {
    /// The verifier's parameters from the token request's `form`: each present, 1 to
    /// `max_param_length` bytes of printable ASCII without space; `invalid_request` otherwise.
    pub fn presented(&self, form: &HashMap<String, String>) -> Result<Presented> {
        let max = self.config.max_param_length;
        let values = self
            .config
            .params
            .iter()
            .map(|name| {
                let value = form.get(name).map(String::as_str).unwrap_or_default();
                if value.is_empty() {
                    return Err(Error::invalid_request(format!("{name} is missing")));
                }
                if value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::invalid_request(format!(
                        "{name} must be 1 to {max} printable ASCII characters without space"
                    )));
                }
                Ok((name.clone(), SecretString::new(value)))
            })
            .collect::<Result<Vec<_>>>()?;
        let presented = Presented { values };
        if self.climbs(&presented) {
            return Err(Error::invalid_request(
                "a value would make a path segment . or .. of the verifier's URL",
            ));
        }
        Ok(presented)
    }

    /// Whether the values make a segment of the URL's path `.` or `..` (or a `%2e` form of
    /// them, which URL parsers treat alike): such a segment would move the question to another
    /// path of the verifier (`/users/{name}/sessions/{token}` with the token `..` asks
    /// `/users/{name}/`). Values in the query are only text.
    fn climbs(&self, presented: &Presented) -> bool {
        let template = &self.config.url;
        let path = &template[..template.find(['?', '#']).unwrap_or(template.len())];
        path.split('/')
            .filter(|segment| segment.contains('{'))
            .map(|segment| fill(segment, presented))
            .any(|filled| {
                let plain = filled.to_ascii_lowercase().replace("%2e", ".");
                plain == "." || plain == ".."
            })
    }

    /// The URL asked: the template with each `{param}` replaced by its value, percent-encoded.
    fn url(&self, presented: &Presented) -> String {
        fill(&self.config.url, presented)
    }

    /// Asks the verifier about what the client presented.
    pub async fn ask(&self, presented: &Presented) -> Result<Answer> {
        let unavailable = |what: String| Error::Unavailable {
            description: format!("the remote verifier {} {what}", self.config.name()),
            retry_after_secs: self.config.timeout_ms.div_ceil(1000).max(1),
        };
        // The error names no URL: the URL holds the presented values.
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                return unavailable(format!(
                    "did not answer within {} ms",
                    self.config.timeout_ms
                ));
            }
            let e = e.without_url();
            tracing::warn!(verifier = %self.config.id, error = %e, "remote verifier failed");
            unavailable("could not be reached".into())
        };
        let url = self.url(presented);
        let request = match self.config.method {
            Method::Get => self.http.get(&url),
            Method::Post => {
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(presented.values.iter().map(|(n, v)| (n, v.expose())))
                    .finish();
                self.http
                    .post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            }
        };
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if status == reqwest::StatusCode::NO_CONTENT || status.is_client_error() {
            return Ok(Answer::Unknown);
        }
        if !status.is_success() {
            return Err(unavailable(format!("answered {status}")));
        }
        let body = server_kit::fetch::read_body(response, self.config.max_response_bytes)
            .await
            .map_err(|e| match e {
                // The bound's message names the limit only; any other could name the URL.
                server_kit::Error::Fetch(detail) if detail.contains("larger than") => {
                    unavailable(format!("answered unusably: {detail}"))
                }
                _ => unavailable("did not finish its answer".into()),
            })?;
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|_| unavailable("answered with something that is not JSON".into()))?;
        self.identity(&answer)
            .map(Answer::Known)
            .map_err(|why| unavailable(format!("answered unusably: {why}")))
    }

    /// The identity in a yes: `{"sub": subject, "name": name, "handle": name in lower case}`.
    fn identity(&self, answer: &Value) -> std::result::Result<UpstreamIdentity, String> {
        let field = |name: &str| {
            let value = if name.starts_with('/') {
                answer.pointer(name)
            } else {
                answer.get(name)
            };
            value.and_then(text_value)
        };
        let subject_field = &self.config.subject_field;
        let subject = field(subject_field)
            .ok_or_else(|| format!("{subject_field} is missing, empty or not text"))?;
        let mut claims = Map::new();
        claims.insert("sub".into(), subject.into());
        if let Some(name) = field(&self.config.name_field) {
            claims.insert("handle".into(), name.to_lowercase().into());
            claims.insert("name".into(), name.into());
        }
        UpstreamIdentity::new(&self.claims, claims)
    }
}
