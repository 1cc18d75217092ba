//! The `[[upstream]]` tables of the configuration: which upstream identity providers users may
//! log in through, how this server authenticates to each (its client id, and a secret read from
//! a 0600 file or the environment, never written in the TOML), what to ask for, which claims
//! give the local account's Wire identity, and what the first login of an unknown upstream
//! identity does. Checked at start with errors that name the upstream and the key.

use std::path::PathBuf;

use serde::Deserialize;

pub use super::claims::ClaimMap;
use crate::error::{Error, Result};

/// The default scopes asked of an upstream.
pub const DEFAULT_SCOPES: &str = "openid profile email";

/// Seconds an upstream call may take by default.
const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// Seconds a fetched discovery document and JWKS are used by default.
const DEFAULT_CACHE_SECS: i64 = 300;

/// Seconds a failed fetch of the discovery document or JWKS is remembered by default.
const DEFAULT_FAILURE_CACHE_SECS: i64 = 10;

/// Seconds before its expiry a kept upstream access token is refreshed by default.
const DEFAULT_REFRESH_MARGIN_SECS: i64 = 60;

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
    /// `oidc`: the issuer URL, whose discovery document is
    /// `{issuer}/.well-known/openid-configuration`. `oauth2`: the name its identities are
    /// linked under (default: the origin of `authorization_endpoint`); see [`Self::issuer`].
    #[serde(default)]
    pub issuer: Option<String>,
    /// `oauth2`: where the browser is sent (`oidc` reads it from discovery).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// `oauth2`: where the code is exchanged.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// `oauth2`: where the user's JSON is read with the access token.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// This server's client id at the upstream.
    pub client_id: String,
    /// How this server authenticates at the upstream's token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
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
    /// `private_key_jwt`: the PKCS#8 PEM file (owner-only) of the ES256 or EdDSA key.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// `private_key_jwt`: the `kid` put in the assertion's header, if the upstream needs one.
    #[serde(default)]
    pub private_key_kid: Option<String>,
    /// The scopes asked for (space-separated). `oidc`: must include `openid` (default
    /// [`DEFAULT_SCOPES`]); `oauth2`: required, anything the upstream knows.
    #[serde(default)]
    pub scopes: Option<String>,
    /// Send a PKCE S256 challenge (default); false only for upstreams that do not know PKCE.
    #[serde(default = "yes")]
    pub pkce: bool,
    /// `oidc`: also read the userinfo endpoint, whose claims fill those the ID token lacks.
    #[serde(default)]
    pub userinfo: bool,
    /// Import the GA4GH visas the upstream releases (its `ga4gh_passport_v1` claim, in the ID
    /// token or — with `userinfo` — at its userinfo endpoint) at every login through it, and
    /// pass them on at our `/userinfo` ([`crate::passports`]). Off by default.
    #[serde(default)]
    pub visas: bool,
    /// PEM files of the roots the upstream's TLS certificate must chain to.
    #[serde(default)]
    pub trust_anchors: Vec<PathBuf>,
    /// Trust the public roots of the Mozilla root program too (default: only `trust_anchors`).
    #[serde(default)]
    pub trust_system_roots: bool,
    /// Which upstream claims give the identity and the local account's Wire identity.
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
    /// Seconds a failed fetch of the discovery document or JWKS is remembered: meanwhile
    /// logins through this upstream fail at once instead of fetching again (0: never).
    #[serde(default = "default_failure_cache")]
    pub failure_cache_secs: i64,
    /// A kept upstream access token expiring within this many seconds is refreshed before it
    /// is handed out by token exchange.
    #[serde(default = "default_refresh_margin")]
    pub refresh_margin_secs: i64,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_cache() -> i64 {
    DEFAULT_CACHE_SECS
}

fn default_failure_cache() -> i64 {
    DEFAULT_FAILURE_CACHE_SECS
}

fn default_refresh_margin() -> i64 {
    DEFAULT_REFRESH_MARGIN_SECS
}

/// The protocol an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// OpenID Connect: discovery, authorization code with PKCE and `nonce`, a verified ID token.
    Oidc,
    /// Plain OAuth 2.0 (GitHub-style): configured endpoints, authorization code (with PKCE
    /// unless `pkce = false`), the identity read from the user-info endpoint.
    Oauth2,
}

/// How this server authenticates at an upstream's token endpoint (RFC 6749 §2.3, RFC 7523).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// The client id and secret in HTTP Basic.
    #[default]
    ClientSecretBasic,
    /// The client id and secret in the form.
    ClientSecretPost,
    /// An RFC 7523 assertion signed with `private_key_file`.
    PrivateKeyJwt,
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

/// Whether `id` has the form of an upstream's id: 1 to 32 of `[a-z0-9_-]`.
pub fn is_upstream_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
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
    /// The issuer its identities are linked under: `issuer`, or for `oauth2` without one the
    /// origin of `authorization_endpoint` (`https://github.com`).
    pub fn issuer(&self) -> String {
        if let Some(issuer) = &self.issuer {
            return issuer.clone();
        }
        self.authorization_endpoint
            .as_deref()
            .and_then(|e| url::Url::parse(e).ok())
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// The scopes asked for.
    pub fn scopes(&self) -> &str {
        self.scopes.as_deref().unwrap_or(DEFAULT_SCOPES)
    }

    /// Checks one upstream; errors name it and the key.
    pub fn validate(&self) -> Result<()> {
        let refuse = |what: String| Error::Config(format!("upstream {:?}: {what}", self.id));
        if !is_upstream_id(&self.id) {
            return Err(refuse("id must be 1 to 32 of [a-z0-9_-]".into()));
        }
        if self.display_name.trim().is_empty() {
            return Err(refuse("display_name is empty".into()));
        }
        self.validate_endpoints().map_err(refuse)?;
        if self.client_id.is_empty() {
            return Err(refuse("client_id is empty".into()));
        }
        self.validate_client_auth().map_err(refuse)?;
        let scopes = self.scopes();
        if !crate::scopes::split(scopes).all(crate::scopes::is_scope_token)
            || crate::scopes::split(scopes).next().is_none()
        {
            return Err(refuse(format!("scopes {scopes:?} must be scope-tokens")));
        }
        if self.kind == UpstreamKind::Oidc && !crate::scopes::split(scopes).any(|s| s == "openid") {
            return Err(refuse(format!(
                "scopes {scopes:?} must be scope-tokens including openid"
            )));
        }
        self.claims.validate(self.kind).map_err(refuse)?;
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(refuse("timeout_secs must be between 1 and 120".into()));
        }
        if !(0..=86_400).contains(&self.cache_secs) {
            return Err(refuse("cache_secs must be between 0 and 86400".into()));
        }
        if !(0..=300).contains(&self.failure_cache_secs) {
            return Err(refuse(
                "failure_cache_secs must be between 0 and 300".into(),
            ));
        }
        if !(0..=3_600).contains(&self.refresh_margin_secs) {
            return Err(refuse(
                "refresh_margin_secs must be between 0 and 3600".into(),
            ));
        }
        Ok(())
    }

    /// `oidc` names only its issuer (the endpoints come from discovery); `oauth2` names its
    /// three endpoints, and `scopes`. Every URL is `https` (`http` only on loopback).
    fn validate_endpoints(&self) -> std::result::Result<(), String> {
        let endpoints = [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("userinfo_endpoint", &self.userinfo_endpoint),
        ];
        let https = |key: &str, url: &str| {
            if acceptable_url(url) {
                Ok(())
            } else {
                Err(format!(
                    "{key} {url:?} must be an https URL (http only on a loopback address)"
                ))
            }
        };
        match self.kind {
            UpstreamKind::Oidc => {
                let issuer = self.issuer.as_deref().ok_or("issuer is required")?;
                https("issuer", issuer)?;
                if let Some((key, _)) = endpoints.iter().find(|(_, v)| v.is_some()) {
                    return Err(format!(
                        "{key} is for kind = \"oauth2\"; an oidc upstream's endpoints come from \
                         its discovery document"
                    ));
                }
            }
            UpstreamKind::Oauth2 => {
                for (key, value) in endpoints {
                    let url = value
                        .as_deref()
                        .ok_or_else(|| format!("{key} is required for kind = \"oauth2\""))?;
                    https(key, url)?;
                }
                if let Some(issuer) = &self.issuer {
                    https("issuer", issuer)?;
                }
                if self.scopes.is_none() {
                    return Err("scopes is required for kind = \"oauth2\"".into());
                }
                if self.userinfo {
                    return Err(
                        "userinfo is for kind = \"oidc\"; an oauth2 upstream is always read at \
                         its userinfo_endpoint"
                            .into(),
                    );
                }
            }
        }
        Ok(())
    }

    /// A secret (never in the TOML: exactly one of a file and a variable) for the secret
    /// methods; a private key file and no secret for `private_key_jwt`.
    fn validate_client_auth(&self) -> std::result::Result<(), String> {
        if self.client_secret.is_some() {
            return Err(
                "client_secret may not be written in the configuration; put it in a 0600 file \
                 (client_secret_file) or an environment variable (client_secret_env)"
                    .into(),
            );
        }
        let has_secret = self.client_secret_file.is_some() || self.client_secret_env.is_some();
        match self.client_auth {
            ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost => {
                if self.client_secret_file.is_some() == self.client_secret_env.is_some() {
                    return Err(
                        "exactly one of client_secret_file and client_secret_env is required"
                            .into(),
                    );
                }
                if self.private_key_file.is_some() || self.private_key_kid.is_some() {
                    return Err(
                        "private_key_file and private_key_kid are for client_auth = \
                         \"private_key_jwt\""
                            .into(),
                    );
                }
            }
            ClientAuth::PrivateKeyJwt => {
                if self.private_key_file.is_none() {
                    return Err("client_auth = \"private_key_jwt\" needs private_key_file".into());
                }
                if has_secret {
                    return Err(
                        "client_auth = \"private_key_jwt\" uses no client secret; remove \
                         client_secret_file / client_secret_env"
                            .into(),
                    );
                }
                if self.private_key_kid.as_ref().is_some_and(|k| k.is_empty()) {
                    return Err("private_key_kid is empty".into());
                }
            }
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
        // Identities are linked by (issuer, subject): two upstreams under one issuer would
        // share them, and one could log in to accounts the other linked.
        if let Some(other) = upstreams[..i]
            .iter()
            .find(|u| u.issuer() == upstream.issuer())
        {
            return Err(Error::Config(format!(
                "upstreams {:?} and {:?} have the same issuer {:?} (for an oauth2 upstream, the \
                 origin of authorization_endpoint unless issuer is set); give each its own issuer",
                other.id,
                upstream.id,
                upstream.issuer()
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

    const OAUTH2: &str = r#"
id = "github"
display_name = "GitHub"
kind = "oauth2"
authorization_endpoint = "https://github.com/login/oauth/authorize"
token_endpoint = "https://github.com/login/oauth/access_token"
userinfo_endpoint = "https://api.github.com/user"
client_id = "Iv1.abc"
client_secret_env = "GITHUB_SECRET"
scopes = "read:user user:email"
[claims]
subject = "id"
handle = "login"
"#;

    #[test]
    fn defaults_apply_and_a_good_upstream_passes() {
        let u = parse(GOOD).unwrap();
        u.validate().unwrap();
        assert_eq!(u.kind, UpstreamKind::Oidc);
        assert_eq!(u.scopes(), DEFAULT_SCOPES);
        assert_eq!(u.first_login, FirstLogin::Refuse);
        assert_eq!(u.claims, ClaimMap::default());
        assert_eq!(u.claims.subject(), "sub");
        assert_eq!(u.timeout_secs, 10);
        assert_eq!(u.client_auth, ClientAuth::ClientSecretBasic);
        assert!(u.pkce && !u.userinfo && !u.trust_system_roots);
        assert_eq!(u.refresh_margin_secs, 60);
        assert_eq!(u.failure_cache_secs, 10);
        assert_eq!(u.issuer(), "https://idp.example/realms/corp");
    }

    #[test]
    fn an_oauth2_upstream_names_its_endpoints_and_is_known_by_their_origin() {
        let u = parse(OAUTH2).unwrap();
        u.validate().unwrap();
        assert_eq!(u.kind, UpstreamKind::Oauth2);
        assert_eq!(u.issuer(), "https://github.com");
        assert_eq!(u.scopes(), "read:user user:email");
        assert_eq!(u.claims.subject(), "id");
        let named = parse(&format!("issuer = \"https://github.example\"\n{OAUTH2}")).unwrap();
        named.validate().unwrap();
        assert_eq!(named.issuer(), "https://github.example");
        let no_pkce = parse(&OAUTH2.replace("[claims]", "pkce = false\n[claims]")).unwrap();
        no_pkce.validate().unwrap();
        assert!(!no_pkce.pkce);
        let cases = [
            ("subject = \"id\"\n", "", "claims.subject is required"),
            (
                "userinfo_endpoint = \"https://api.github.com/user\"\n",
                "",
                "userinfo_endpoint is required",
            ),
            (
                "scopes = \"read:user user:email\"\n",
                "",
                "scopes is required",
            ),
            (
                "https://api.github.com/user",
                "http://api.github.com/user",
                "userinfo_endpoint \"http://api.github.com/user\" must be an https URL",
            ),
            (
                "scopes = \"read:user user:email\"\n",
                "scopes = \"read:user\"\nuserinfo = true\n",
                "userinfo is for kind = \"oidc\"",
            ),
        ];
        for (from, to, expected) in cases {
            let message = refusal(&OAUTH2.replace(from, to));
            assert!(message.contains(expected), "{from}: {message}");
        }
        // An oidc upstream takes its endpoints from discovery only.
        let message = refusal(&format!(
            "{GOOD}token_endpoint = \"https://idp.example/t\"\n"
        ));
        assert!(
            message.contains("token_endpoint is for kind = \"oauth2\""),
            "{message}"
        );
        assert!(
            refusal(&GOOD.replace("issuer = \"https://idp.example/realms/corp\"\n", ""))
                .contains("issuer is required")
        );
    }

    #[test]
    fn client_authentication_takes_a_secret_or_a_key_never_both() {
        let key = "client_auth = \"private_key_jwt\"\nprivate_key_file = \"/etc/e2ei/k.pem\"\n";
        let with_key = GOOD.replace("client_secret_env = \"CORP_SECRET\"\n", key);
        let u = parse(&with_key).unwrap();
        u.validate().unwrap();
        assert_eq!(u.client_auth, ClientAuth::PrivateKeyJwt);
        let post = parse(&format!("{GOOD}client_auth = \"client_secret_post\"\n")).unwrap();
        post.validate().unwrap();
        assert_eq!(post.client_auth, ClientAuth::ClientSecretPost);
        let cases = [
            (format!("{GOOD}{key}"), "uses no client secret"),
            (
                with_key.replace("private_key_file = \"/etc/e2ei/k.pem\"\n", ""),
                "needs private_key_file",
            ),
            (
                format!("{GOOD}private_key_file = \"/k.pem\"\n"),
                "are for client_auth = \"private_key_jwt\"",
            ),
            (
                format!("{with_key}private_key_kid = \"\"\n"),
                "private_key_kid is empty",
            ),
            (
                format!("{GOOD}client_auth = \"tls_client_auth\"\n"),
                "unknown variant",
            ),
            (
                format!("{GOOD}refresh_margin_secs = -1\n"),
                "refresh_margin_secs",
            ),
        ];
        for (text, expected) in cases {
            let message = refusal(&text);
            assert!(message.contains(expected), "{text}: {message}");
        }
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
            (
                "failure_cache_secs = 301\n",
                "failure_cache_secs must be between 0 and 300",
            ),
            (
                "failure_cache_secs = -1\n",
                "failure_cache_secs must be between 0 and 300",
            ),
            ("[claims]\nhandle = \"\"\n", "claims.handle is empty"),
            ("[claims]\nsubject = \" \"\n", "claims.subject is empty"),
        ];
        for (extra, expected) in cases {
            let text = format!("{GOOD}{extra}");
            let message = refusal(&text);
            assert!(message.contains(expected), "{extra}: {message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
        let swapped = |from: &str, to: &str| refusal(&GOOD.replace(from, to));
        assert!(swapped("\"oidc\"", "\"saml\"").contains("unknown variant"));
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
        let one_issuer = vec![
            parse(GOOD).unwrap(),
            parse(&GOOD.replace("\"corp\"", "\"corp2\"")).unwrap(),
        ];
        assert!(
            validate_all(&one_issuer)
                .unwrap_err()
                .to_string()
                .contains("have the same issuer")
        );
    }
}
