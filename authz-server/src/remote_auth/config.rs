//! The `[[remote_auth]]` tables of the configuration: each a remote verifier — a service of
//! the operator's (Minecraft's `hasJoined` is the model) that, asked with what a client
//! presented, says which of its users that is. Each names the grant type clients use it with,
//! the parameters a client must present (and how long they may be), the URL template the
//! values go into (percent-encoded), the method, which answer fields are the subject and the
//! name, the timeout, the trust anchors of its TLS certificate, how much of its answer is read,
//! and what the first login of an identity no account is linked to does. Checked at start with
//! errors that name the verifier and the key.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::federation::FirstLogin;
use crate::federation::config::{acceptable_url, is_upstream_id};

/// Milliseconds a verifier may take by default.
const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// The longest parameter value accepted by default (bytes).
const DEFAULT_MAX_PARAM_LENGTH: usize = 128;

/// The most bytes of a verifier's answer read by default.
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Form parameters of the token request a verifier's parameters may not take over.
const RESERVED_PARAMS: [&str; 7] = [
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "resource",
];

/// How the verifier is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET` of the URL (the values in the URL).
    #[default]
    Get,
    /// `POST` of the URL with the values also as a form body.
    Post,
}

/// One remote verifier (`[[remote_auth]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteAuthConfig {
    /// Short name (`[a-z0-9_-]`, 1–32), shared with upstreams and JWT-bearer issuers: the
    /// issuer its identities are linked under, the name clients are allowed by, the audit log's.
    pub id: String,
    /// Its name in messages (default: the id).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The `grant_type` clients send (an absolute URI, RFC 6749 §4.5; pick one under a domain
    /// you own, e.g. `https://auth.example.com/grant-type/minecraft`).
    pub grant_type: String,
    /// The form parameters a client presents (each required), put into `url` as `{name}`.
    pub params: Vec<String>,
    /// The longest value of a parameter (bytes of printable ASCII without space).
    #[serde(default = "default_max_param_length")]
    pub max_param_length: usize,
    /// The URL asked, with `{param}` placeholders in its path or query.
    pub url: String,
    /// `GET` or `POST`.
    #[serde(default)]
    pub method: Method,
    /// The answer's field holding the user's stable id there (a name, or a JSON pointer
    /// starting with `/`).
    #[serde(default = "default_subject_field")]
    pub subject_field: String,
    /// The answer's field holding the user's name (a name or a JSON pointer): the display name
    /// of an account made at a first login, whose handle is the name in lower case.
    #[serde(default = "default_name_field")]
    pub name_field: String,
    /// Milliseconds the whole call may take (connect, send, read).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// PEM files of the roots the verifier's TLS certificate must chain to.
    #[serde(default)]
    pub trust_anchors: Vec<PathBuf>,
    /// Trust the public roots of the Mozilla root program too.
    #[serde(default)]
    pub trust_system_roots: bool,
    /// The most bytes of an answer read; a longer one is refused while it is read.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// What the first login of an identity no account is linked to does: `create` or `refuse`
    /// (`link` needs a browser).
    #[serde(default)]
    pub first_login: FirstLogin,
}

fn default_max_param_length() -> usize {
    DEFAULT_MAX_PARAM_LENGTH
}

fn default_subject_field() -> String {
    "id".into()
}

fn default_name_field() -> String {
    "name".into()
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_max_response_bytes() -> usize {
    DEFAULT_MAX_RESPONSE_BYTES
}

/// Whether `name` can be a form parameter of a verifier: 1 to 64 of `[A-Za-z0-9_]`.
fn is_param_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The `{name}` placeholders of a URL template, or why it is malformed.
pub fn placeholders(template: &str) -> std::result::Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("url has a } without {".into());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("url has a { without }")?;
        names.push(&after[..close]);
        rest = &after[close + 1..];
    }
    Ok(names)
}

impl RemoteAuthConfig {
    /// Its name in messages.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }

    /// Checks one verifier; errors name it and the key.
    pub fn validate(&self) -> Result<()> {
        let refuse = |what: String| Error::Config(format!("remote_auth {:?}: {what}", self.id));
        if !is_upstream_id(&self.id) {
            return Err(refuse("id must be 1 to 32 of [a-z0-9_-]".into()));
        }
        if self
            .display_name
            .as_ref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err(refuse("display_name is empty".into()));
        }
        let grant_type = url::Url::parse(&self.grant_type);
        if grant_type.is_err() || crate::grants::request::is_standard(&self.grant_type) {
            return Err(refuse(format!(
                "grant_type {:?} must be an absolute URI of your own (RFC 6749 §4.5), not a \
                 standard grant type",
                self.grant_type
            )));
        }
        if self.params.is_empty() {
            return Err(refuse(
                "params is empty: a client must present something".into(),
            ));
        }
        for (i, param) in self.params.iter().enumerate() {
            if !is_param_name(param) || RESERVED_PARAMS.contains(&param.as_str()) {
                return Err(refuse(format!(
                    "params: {param:?} must be 1 to 64 of [A-Za-z0-9_] and not a parameter of \
                     the token request itself"
                )));
            }
            if self.params[..i].contains(param) {
                return Err(refuse(format!("params: {param:?} is listed twice")));
            }
        }
        if !(1..=1024).contains(&self.max_param_length) {
            return Err(refuse("max_param_length must be between 1 and 1024".into()));
        }
        self.validate_url().map_err(refuse)?;
        for (key, field) in [
            ("subject_field", &self.subject_field),
            ("name_field", &self.name_field),
        ] {
            if field.trim().is_empty() {
                return Err(refuse(format!("{key} is empty")));
            }
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(refuse("timeout_ms must be between 100 and 60000".into()));
        }
        if !(256..=1024 * 1024).contains(&self.max_response_bytes) {
            return Err(refuse(
                "max_response_bytes must be between 256 and 1048576".into(),
            ));
        }
        if self.first_login == FirstLogin::Link {
            return Err(refuse(
                "first_login = \"link\" needs a browser; use \"create\" or \"refuse\"".into(),
            ));
        }
        Ok(())
    }

    /// Every placeholder names a parameter and stands in the path or query; the URL is
    /// `https` (`http` only on loopback).
    fn validate_url(&self) -> std::result::Result<(), String> {
        let names = placeholders(&self.url)?;
        if let Some(unknown) = names.iter().find(|n| !self.params.iter().any(|p| p == *n)) {
            return Err(format!("url names {{{unknown}}}, which is not in params"));
        }
        let filled = names.iter().fold(self.url.clone(), |url, n| {
            url.replace(&format!("{{{n}}}"), "x")
        });
        if !acceptable_url(&filled) {
            return Err(format!(
                "url {:?} must be an https URL (http only on a loopback address)",
                self.url
            ));
        }
        let parsed = url::Url::parse(&filled).map_err(|e| format!("url: {e}"))?;
        let origin = parsed.origin().ascii_serialization();
        let before_values = self.url.split('{').next().unwrap_or_default();
        if !names.is_empty() && !before_values.starts_with(&format!("{origin}/")) {
            return Err("url may have placeholders only in its path or query".into());
        }
        if self.method == Method::Get && names.is_empty() {
            return Err("a GET url must carry the parameters: name them as {param}".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "minecraft"
grant_type = "https://auth.example/grant-type/minecraft"
params = ["username", "server_hash"]
url = "https://sessionserver.example/session/minecraft/hasJoined?username={username}&serverId={server_hash}"
"#;

    fn refusal(text: &str) -> String {
        match toml::from_str::<RemoteAuthConfig>(text) {
            Ok(c) => c.validate().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_apply_and_a_good_verifier_passes() {
        let c: RemoteAuthConfig = toml::from_str(GOOD).unwrap();
        c.validate().unwrap();
        assert_eq!(c.method, Method::Get);
        assert_eq!(
            (c.subject_field.as_str(), c.name_field.as_str()),
            ("id", "name")
        );
        assert_eq!(c.timeout_ms, 5_000);
        assert_eq!(c.first_login, FirstLogin::Refuse);
        assert_eq!(c.name(), "minecraft");
        let local = GOOD.replace("https://sessionserver.example", "http://127.0.0.1:9000");
        toml::from_str::<RemoteAuthConfig>(&local)
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn each_mistake_is_named() {
        let cases = [
            ("\"minecraft\"", "\"Mine craft\"", "id must be"),
            (
                "https://auth.example/grant-type/minecraft",
                "password",
                "absolute URI",
            ),
            (
                "https://auth.example/grant-type/minecraft",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "not a standard grant type",
            ),
            ("[\"username\", \"server_hash\"]", "[]", "params is empty"),
            (
                "[\"username\", \"server_hash\"]",
                "[\"username\", \"server_hash\", \"scope\"]",
                "\"scope\" must be",
            ),
            (
                "[\"username\", \"server_hash\"]",
                "[\"username\", \"server_hash\", \"username\"]",
                "listed twice",
            ),
            (
                "serverId={server_hash}",
                "serverId={hash}",
                "{hash}, which is not",
            ),
            (
                "serverId={server_hash}",
                "serverId={server_hash",
                "without }",
            ),
            ("https://sessionserver", "http://sessionserver", "https URL"),
            (
                "https://sessionserver.example/",
                "https://{username}.example/",
                "only in its path or query",
            ),
        ];
        for (from, to, expected) in cases {
            let message = refusal(&GOOD.replace(from, to));
            assert!(message.contains(expected), "{to}: {message}");
        }
        for (extra, expected) in [
            ("timeout_ms = 50\n", "timeout_ms"),
            ("max_response_bytes = 10\n", "max_response_bytes"),
            ("first_login = \"link\"\n", "needs a browser"),
            ("max_param_length = 0\n", "max_param_length"),
            ("method = \"DELETE\"\n", "unknown variant"),
            ("subject_field = \"\"\n", "subject_field is empty"),
        ] {
            let message = refusal(&format!("{GOOD}{extra}"));
            assert!(message.contains(expected), "{extra}: {message}");
        }
    }
}
