//! Login through upstream identity providers (federation): the server as an identity broker.
//! A user picks an upstream on the login page; the browser goes there with a single-use
//! `state`, a `nonce` and a PKCE S256 challenge bound to the waiting authorization request
//! ([`login`]); the upstream's answer comes back to `/upstream/callback`, whose code is exchanged
//! at the upstream's token endpoint ([`token`]) for an ID token verified against the upstream's
//! keys ([`id_token`], [`discovery`]); the (issuer, subject) it names finds the linked local
//! account or, by the upstream's `first_login` policy, creates one from the mapped claims
//! ([`accounts`]) or — under the `link` policy — links it to the account the user then logs in
//! to with its password ([`linking`]). Our own flow then goes on as after a password login.
//!
//! [`Upstreams`] holds each configured upstream ([`config`]) with its client secret, its HTTPS
//! client (the configured trust anchors, a timeout) and its cached discovery document and keys.

pub mod accounts;
pub mod config;
pub mod discovery;
pub mod id_token;
pub mod linking;
pub mod login;
pub mod token;

use std::sync::{Arc, Mutex};

use proto::secret::SecretString;

pub use config::{ClaimMap, FirstLogin, UpstreamConfig, UpstreamKind};

use crate::error::{Error, Result};

/// The most bytes read of any upstream answer: discovery document, JWKS, token response.
pub const MAX_UPSTREAM_BODY: usize = 64 * 1024;

/// The client secret this server authenticates with at an upstream (redacted in `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    /// The secret, for the token request's `Authorization` header.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(…)")
    }
}

/// One configured upstream, ready to use.
#[derive(Debug)]
pub struct Upstream {
    /// Its configuration.
    pub config: UpstreamConfig,
    secret: ClientSecret,
    http: reqwest::Client,
    cache: Mutex<discovery::Cache>,
}

impl Upstream {
    /// Reads the secret and builds the HTTPS client of a validated upstream.
    fn load(config: UpstreamConfig) -> Result<Self> {
        let unusable = |what: String| Error::Config(format!("upstream {:?}: {what}", config.id));
        let secret = if let Some(path) = &config.client_secret_file {
            let bytes = server_kit::files::read_private(path)
                .map_err(|e| unusable(format!("client_secret_file: {e}")))?;
            String::from_utf8(bytes)
                .map_err(|_| unusable("client_secret_file is not UTF-8".into()))?
        } else if let Some(name) = &config.client_secret_env {
            std::env::var(name)
                .map_err(|_| unusable(format!("client_secret_env: {name} is not set")))?
        } else {
            return Err(unusable("no client secret".into()));
        };
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(unusable("the client secret is empty".into()));
        }
        let secret = ClientSecret(SecretString::new(secret));
        let http = server_kit::tls::https_client(
            &config.trust_anchors,
            std::time::Duration::from_secs(config.timeout_secs),
        )
        .map_err(|e| unusable(format!("trust_anchors: {e}")))?;
        Ok(Self {
            config,
            secret,
            http,
            cache: Mutex::new(discovery::Cache::default()),
        })
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.config.id
    }
}

/// The configured upstreams, in configuration order.
#[derive(Debug, Default)]
pub struct Upstreams(Vec<Arc<Upstream>>);

impl Upstreams {
    /// Loads every configured upstream (already validated by [`crate::Config::validate`]).
    pub fn load(configs: &[UpstreamConfig]) -> Result<Self> {
        configs
            .iter()
            .cloned()
            .map(|c| Upstream::load(c).map(Arc::new))
            .collect::<Result<_>>()
            .map(Self)
    }

    /// The upstream with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Upstream>> {
        self.0.iter().find(|u| u.id() == id).cloned()
    }

    /// Each upstream's id and display name, for the login page.
    pub fn buttons(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|u| (u.config.id.clone(), u.config.display_name.clone()))
            .collect()
    }

    /// Where a browser sent to the upstreams goes: a page whose forms start upstream logins
    /// allows these as CSP `form-action` targets (the redirect to the upstream is governed by
    /// the form's page).
    pub fn authorization_targets(&self) -> Vec<String> {
        self.0.iter().map(|u| u.config.issuer.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_comes_from_an_owner_only_file_or_the_environment_and_never_prints() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret-value\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut config: UpstreamConfig = toml::from_str(&format!(
            "id = \"corp\"\ndisplay_name = \"Corp\"\nkind = \"oidc\"\nissuer = \"https://idp.test\"\nclient_id = \"c\"\nclient_secret_file = {:?}\n",
            path.display().to_string()
        ))
        .unwrap();
        let e = Upstream::load(config.clone()).unwrap_err().to_string();
        assert!(e.contains("client_secret_file"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let upstream = Upstream::load(config.clone()).unwrap();
        assert_eq!(upstream.secret.expose(), "s3cret-value");
        assert!(!format!("{upstream:?}").contains("s3cret"));
        config.client_secret_file = None;
        config.client_secret_env = Some("E2EI_TEST_UNSET_UPSTREAM_SECRET".into());
        let e = Upstream::load(config).unwrap_err().to_string();
        assert!(e.contains("is not set"), "{e}");
    }
}
