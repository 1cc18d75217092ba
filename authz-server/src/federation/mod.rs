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
//! An `oauth2` upstream (GitHub-style, no ID token) is read at its user-info endpoint instead
//! ([`userinfo`], [`claims`]), and so, with `userinfo = true`, is an `oidc` one for the claims
//! its ID token lacks ([`identity`]).
//!
//! The upstream's access and refresh tokens of a login are kept, sealed ([`sealing`]), for
//! the account it logged in to ([`kept_tokens`]), and handed to allowed clients by RFC 8693
//! token exchange ([`crate::grants`]), refreshed at the upstream when they are about to
//! expire.
//!
//! [`Upstreams`] holds each configured upstream ([`config`]) with its client secret or key
//! ([`client_auth`]), its HTTPS client (the configured trust anchors, a timeout) and its
//! cached discovery document and keys (each fetched once however many logins need it, a
//! failure remembered for a while: [`server_kit::flight`]), and the custody of kept tokens.

pub mod accounts;
pub mod claims;
pub mod client_auth;
pub mod config;
pub mod discovery;
pub mod freshness;
pub mod id_token;
pub mod identity;
pub mod kept_tokens;
pub mod linking;
pub mod login;
pub mod sealing;
pub mod token;
pub mod userinfo;

use std::path::Path;
use std::sync::Arc;

pub use client_auth::{ClientSecret, UpstreamCredentials};
pub use config::{ClaimMap, ClientAuth, FirstLogin, UpstreamConfig, UpstreamKind};

use crate::error::{Error, Result};

/// The most bytes read of any upstream answer: discovery document, JWKS, token response,
/// user info.
pub const MAX_UPSTREAM_BODY: usize = 64 * 1024;

/// One configured upstream, ready to use.
#[derive(Debug)]
pub struct Upstream {
    /// Its configuration.
    pub config: UpstreamConfig,
    issuer: String,
    credentials: UpstreamCredentials,
    http: reqwest::Client,
    cache: discovery::Cache,
}

impl Upstream {
    /// Reads the secret or key and builds the HTTPS client of a validated upstream.
    fn load(config: UpstreamConfig) -> Result<Self> {
        let unusable = |what: String| Error::Config(format!("upstream {:?}: {what}", config.id));
        let credentials = UpstreamCredentials::load(&config).map_err(unusable)?;
        let http = server_kit::tls::https_client_trusting(
            &config.trust_anchors,
            config.trust_system_roots,
            std::time::Duration::from_secs(config.timeout_secs),
        )
        .map_err(|e| unusable(format!("trust_anchors: {e}")))?;
        Ok(Self {
            issuer: config.issuer(),
            config,
            credentials,
            http,
            cache: discovery::Cache::default(),
        })
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The issuer its identities are linked under.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What this server authenticates with there.
    pub fn credentials(&self) -> &UpstreamCredentials {
        &self.credentials
    }
}

/// The configured upstreams, in configuration order, and the custody of the tokens they
/// issued.
#[derive(Debug, Default)]
pub struct Upstreams {
    list: Vec<Arc<Upstream>>,
    custody: Option<kept_tokens::Custody>,
}

impl Upstreams {
    /// Loads every configured upstream (already validated by [`crate::Config::validate`]) and,
    /// when there is one, the key their tokens are sealed with (`key_file`, made if missing).
    pub fn load(configs: &[UpstreamConfig], key_file: &Path) -> Result<Self> {
        let list = configs
            .iter()
            .cloned()
            .map(|c| Upstream::load(c).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let custody = if list.is_empty() {
            None
        } else {
            Some(kept_tokens::Custody::new(
                sealing::TokenKey::load_or_create(key_file)?,
            ))
        };
        Ok(Self { list, custody })
    }

    /// The upstream with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Upstream>> {
        self.list.iter().find(|u| u.id() == id).cloned()
    }

    /// The upstream with this id, or else this issuer (a token exchange's `resource`).
    pub fn by_id_or_issuer(&self, name: &str) -> Option<Arc<Upstream>> {
        self.get(name)
            .or_else(|| self.list.iter().find(|u| u.issuer() == name).cloned())
    }

    /// Each upstream's id and display name, for the login page.
    pub fn buttons(&self) -> Vec<(String, String)> {
        self.list
            .iter()
            .map(|u| (u.config.id.clone(), u.config.display_name.clone()))
            .collect()
    }

    /// Where a browser sent to the upstreams goes: a page whose forms start upstream logins
    /// allows these as CSP `form-action` targets (the redirect to the upstream is governed by
    /// the form's page).
    pub fn authorization_targets(&self) -> Vec<String> {
        self.list
            .iter()
            .flat_map(|u| {
                [
                    u.config.issuer(),
                    u.config.authorization_endpoint.clone().unwrap_or_default(),
                ]
            })
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The custody of kept tokens (there is one whenever an upstream is configured).
    pub(crate) fn custody(&self) -> Result<&kept_tokens::Custody> {
        self.custody
            .as_ref()
            .ok_or_else(|| Error::Config("no upstream is configured".into()))
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
        let UpstreamCredentials::Secret {
            secret,
            post: false,
        } = upstream.credentials()
        else {
            panic!("not client_secret_basic");
        };
        assert_eq!(secret.expose(), "s3cret-value");
        assert!(!format!("{upstream:?}").contains("s3cret"));
        config.client_secret_file = None;
        config.client_secret_env = Some("E2EI_TEST_UNSET_UPSTREAM_SECRET".into());
        let e = Upstream::load(config).unwrap_err().to_string();
        assert!(e.contains("is not set"), "{e}");
    }
}
