//! The `[[upstream]]` tables of the configuration: which upstream identity providers users may
//! log in through, how this server authenticates to each (its client id, and a secret read from
//! a 0600 file or the environment, never written in the TOML), what to ask for, which claims
//! give the local account's Wire identity, and what the first login of an unknown upstream
//! identity does. Checked at start with errors that name the upstream and the key.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The default scopes asked of an upstream.
pub const DEFAULT_SCOPES: &str = "openid profile email";

/// Seconds an upstream call may take by default.
const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// Seconds a fetched discovery document and JWKS are used by default.
const DEFAULT_CACHE_SECS: i64 = 300;

/// One upstream identity provider (`[[upstream]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Short name: in URLs, the audit log and the store (`[a-z0-9_-]`, 1–32).
    pub id: String,
    /// What the login page's button says ("Sign in with …").
    pub display_name: String,
    /// The protocol.
    pub kind: UpstreamKind,
    /// The issuer URL; its discovery document is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// This server's client id at the upstream.
    pub client_id: String,
    /// A file holding the client secret (owner-only, 0600).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// An environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// A secret written in the TOML itself: refused at start, with a pointer to the two
    /// supported places (present only so the refusal can say so).
    #[serde(default)]
    pub client_secret: Option<serde::de::IgnoredAny>,
    /// The scopes asked for (space-separated); must include `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// PEM files of the roots the upstream's TLS certificate must chain to (no system roots).
    #[serde(default)]
    pub trust_anchors: Vec<PathBuf>,
    /// Which upstream claims give the local account's Wire identity.
    #[serde(default)]
    pub claims: ClaimMap,
    /// What the first login of an upstream identity no local account is linked to does.
    #[serde(default)]
    pub first_login: FirstLogin,
    /// Seconds each upstream call may take (connect, send, read).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Seconds the discovery document and JWKS are used before they are fetched again.
    #[serde(default = "default_cache")]
    pub cache_secs: i64,
}

fn default_scopes() -> String {
    DEFAULT_SCOPES.into()
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_cache() -> i64 {
    DEFAULT_CACHE_SECS
}

/// The protocol an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// OpenID Connect: discovery, authorization code with PKCE and `nonce`, a verified ID token.
    Oidc,
}

/// What the first login of an upstream identity that no local account is linked to does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirstLogin {
    /// Create a local account from the mapped claims and link the identity to it.
    Create,
    /// Link the identity to an existing local account, once the user has logged in to it with
    /// its password in the same browser flow (needs `local_login`).
    Link,
    /// Refuse the login: an operator links accounts.
    #[default]
    Refuse,
}

/// Which upstream ID token claims give the Wire identity of an account created at first login.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMap {
    /// The claim holding the handle (a bare handle, or `handle@{domain}` of this server's
    /// domain).
    pub handle: String,
    /// The claim holding the display name.
    pub display_name: String,
    /// The claim holding the email address (recorded with `email_verified`; never used to find
    /// or link an account).
    pub email: String,
    /// The claim holding the team, if the upstream has one.
    pub team: Option<String>,
}

impl Default for ClaimMap {
    fn default() -> Self {
        Self {
            handle: "preferred_username".into(),
            display_name: "name".into(),
            email: "email".into(),
            team: None,
        }
    }
}

/// Whether `url` is an `https` URL, or `http` on a loopback address (a test or a local
/// upstream, RFC 8252 §8.3's reasoning).
pub fn acceptable_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        },
        _ => false,
    }
}

impl UpstreamConfig {
    /// Checks one upstream; errors name it and the key.
    pub fn validate(&self) -> Result<()> {
        let refuse = |what: String| Error::Config(format!("upstream {:?}: {what}", self.id));
        if self.id.is_empty()
            || self.id.len() > 32
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(refuse("id must be 1 to 32 of [a-z0-9_-]".into()));
        }
        if self.display_name.trim().is_empty() {
            return Err(refuse("display_name is empty".into()));
        }
        if !acceptable_url(&self.issuer) {
            return Err(refuse(format!(
                "issuer {:?} must be an https URL (http only on a loopback address)",
                self.issuer
            )));
        }
        if self.client_id.is_empty() {
            return Err(refuse("client_id is empty".into()));
        }
        if self.client_secret.is_some() {
            return Err(refuse(
                "client_secret may not be written in the configuration; put it in a 0600 file \
                 (client_secret_file) or an environment variable (client_secret_env)"
                    .into(),
            ));
        }
        if self.client_secret_file.is_some() == self.client_secret_env.is_some() {
            return Err(refuse(
                "exactly one of client_secret_file and client_secret_env is required".into(),
            ));
        }
        if !crate::scopes::split(&self.scopes).any(|s| s == "openid")
            || !crate::scopes::split(&self.scopes).all(crate::scopes::is_scope_token)
        {
            return Err(refuse(format!(
                "scopes {:?} must be scope-tokens including openid",
                self.scopes
            )));
        }
        for (key, claim) in [
            ("claims.handle", Some(&self.claims.handle)),
            ("claims.display_name", Some(&self.claims.display_name)),
            ("claims.email", Some(&self.claims.email)),
            ("claims.team", self.claims.team.as_ref()),
        ] {
            if claim.is_some_and(|c| c.trim().is_empty()) {
                return Err(refuse(format!("{key} is empty")));
            }
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(refuse("timeout_secs must be between 1 and 120".into()));
        }
        if !(0..=86_400).contains(&self.cache_secs) {
            return Err(refuse("cache_secs must be between 0 and 86400".into()));
        }
        Ok(())
    }
}

/// Checks every upstream and that no two share an id.
pub fn validate_all(upstreams: &[UpstreamConfig]) -> Result<()> {
    for (i, upstream) in upstreams.iter().enumerate() {
        upstream.validate()?;
        if upstreams[..i].iter().any(|u| u.id == upstream.id) {
            return Err(Error::Config(format!(
                "two upstreams have the id {:?}",
                upstream.id
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "corp"
display_name = "Corp SSO"
kind = "oidc"
issuer = "https://idp.example/realms/corp"
client_id = "e2ei"
client_secret_env = "CORP_SECRET"
"#;

    fn parse(text: &str) -> std::result::Result<UpstreamConfig, toml::de::Error> {
        toml::from_str(text)
    }

    fn refusal(text: &str) -> String {
        match parse(text) {
            Ok(u) => u.validate().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_apply_and_a_good_upstream_passes() {
        let u = parse(GOOD).unwrap();
        u.validate().unwrap();
        assert_eq!(u.kind, UpstreamKind::Oidc);
        assert_eq!(u.scopes, DEFAULT_SCOPES);
        assert_eq!(u.first_login, FirstLogin::Refuse);
        assert_eq!(u.claims, ClaimMap::default());
        assert_eq!(u.timeout_secs, 10);
    }

    #[test]
    fn each_mistake_is_named() {
        let cases = [
            (
                "client_secret = \"s3cret\"\n",
                "may not be written in the configuration",
            ),
            ("client_secret_file = \"/x\"\n", "exactly one of"),
            ("scopes = \"profile email\"\n", "including openid"),
            ("timeout_secs = 0\n", "timeout_secs"),
            ("[claims]\nhandle = \"\"\n", "claims.handle is empty"),
        ];
        for (extra, expected) in cases {
            let text = format!("{GOOD}{extra}");
            let message = refusal(&text);
            assert!(message.contains(expected), "{extra}: {message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
        let swapped = |from: &str, to: &str| refusal(&GOOD.replace(from, to));
        assert!(swapped("\"oidc\"", "\"oauth2\"").contains("unknown variant"));
        assert!(swapped("https://idp.example", "http://idp.example").contains("https URL"));
        assert!(swapped("\"corp\"", "\"Corp!\"").contains("[a-z0-9_-]"));
        assert!(swapped("e2ei", "").contains("client_id is empty"));
        parse(&GOOD.replace("https://idp.example", "http://127.0.0.1:8080"))
            .unwrap()
            .validate()
            .unwrap();
        let twice = vec![parse(GOOD).unwrap(), parse(GOOD).unwrap()];
        assert!(
            validate_all(&twice)
                .unwrap_err()
                .to_string()
                .contains("two upstreams")
        );
    }
}
