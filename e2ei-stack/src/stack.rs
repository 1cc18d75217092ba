//! Both servers in-process, wired together: the acme-server trusts the authz-server's dev TLS
//! root for its JWKS and OpenID discovery, verifies `wire-dpop-01` against its access-token URL
//! and `wire-oidc-01` against it as issuer — or, with [`Options::id_provider`], against an
//! organisation's own OpenID Provider.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use client_sdk::{Config as SdkConfig, Login};
use proto::clock::{Clock, SystemClock};
use proto::secret::SecretString;

/// The demo domain.
pub const DOMAIN: &str = "wire.example";

/// A user to create before the servers start (besides the seeded demo user).
#[derive(Debug, Clone)]
pub struct ExtraUser {
    /// Handle.
    pub handle: String,
    /// Display name.
    pub name: String,
    /// Password.
    pub password: SecretString,
}

/// Where and how to start the stack.
#[derive(Debug, Clone)]
pub struct Options {
    /// Time source of both servers.
    pub clock: Arc<dyn Clock>,
    /// authz-server address (port 0: any free port).
    pub authz_listen: SocketAddr,
    /// acme-server address.
    pub acme_listen: SocketAddr,
    /// Users to add before the start (only when the data directory is new to them).
    pub users: Vec<ExtraUser>,
    /// The `wire-oidc-01` issuer when it is not the authz-server.
    pub id_provider: Option<IdProvider>,
    /// Upstream identity providers users log in to the authz-server through (`[[upstream]]`).
    pub upstreams: Vec<authz_server::federation::UpstreamConfig>,
    /// Both servers' `[store]` (each gets its own default schema on a shared database).
    pub store: server_kit::store::StoreConfig,
    /// The authz-server's `public_url` (and so the acme-server's view of it) when clients
    /// reach it through something in front, a balancer of replicas; its own address otherwise.
    pub authz_public_url: Option<String>,
    /// The acme-server's `public_url`, likewise.
    pub acme_public_url: Option<String>,
    /// The acme-server's `[rate_limits]` when not the defaults.
    pub acme_rate_limits: Option<acme_server::config::RateLimits>,
}

/// A third-party OpenID Provider as the acme-server's `wire_oidc.issuer`.
#[derive(Debug, Clone)]
pub struct IdProvider {
    /// Its issuer identifier (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// The client id its ID tokens are issued to (`wire_oidc.client_id`).
    pub client_id: String,
    /// The root of its TLS certificate (added to the acme-server's `trust_anchors`).
    pub tls_root: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            clock: Arc::new(SystemClock),
            authz_listen: any,
            acme_listen: any,
            users: Vec::new(),
            id_provider: None,
            upstreams: Vec::new(),
            store: server_kit::store::StoreConfig::default(),
            authz_public_url: None,
            acme_public_url: None,
            acme_rate_limits: None,
        }
    }
}

/// Both servers.
#[derive(Debug)]
pub struct Stack {
    /// The authorization server.
    pub authz: authz_server::RunningServer,
    /// The ACME server.
    pub acme: acme_server::RunningServer,
    /// Where their data lives.
    pub dir: PathBuf,
    /// The demo user's password.
    pub demo_password: SecretString,
}

impl Stack {
    /// Starts both servers under `dir` (authz-server in `dir/authz`, acme-server in `dir/acme`).
    pub async fn start_with(dir: &Path, options: Options) -> anyhow::Result<Self> {
        let Options {
            clock,
            authz_listen,
            acme_listen,
            users,
            id_provider,
            upstreams,
            store,
            authz_public_url,
            acme_public_url,
            acme_rate_limits,
        } = options;
        let authz_config = authz_server::Config {
            listen: authz_listen,
            public_url: authz_public_url.unwrap_or_default(),
            data_dir: dir.join("authz"),
            store: store.clone(),
            dev: true,
            domain: DOMAIN.into(),
            upstream: upstreams,
            ..authz_server::Config::default()
        };
        add_users(&authz_config, &users)?;
        let authz = authz_server::start(authz_config.clone(), clock.clone()).await?;
        let demo_password = authz_server::server::demo_password(&authz_config)?;
        let authz_tls = authz
            .dev_ca_cert
            .clone()
            .ok_or_else(|| anyhow::anyhow!("dev mode has a TLS root"))?;

        let mut acme_config = acme_server::Config {
            listen: acme_listen,
            public_url: acme_public_url.unwrap_or_default(),
            data_dir: dir.join("acme"),
            store,
            dev: true,
            domains: vec![DOMAIN.into()],
            trust_anchors: vec![authz_tls],
            ..acme_server::Config::default()
        };
        acme_config.wire_dpop.target =
            format!("{}/clients/{{device-id}}/access-token", authz.base_url);
        acme_config.wire_dpop.backend_jwks_url = Some(format!("{}/jwks", authz.base_url));
        acme_config.wire_oidc.issuer = authz.base_url.clone();
        if let Some(rate_limits) = acme_rate_limits {
            acme_config.rate_limits = rate_limits;
        }
        if let Some(idp) = id_provider {
            acme_config.wire_oidc.issuer = idp.issuer;
            acme_config.wire_oidc.client_id = idp.client_id;
            acme_config.trust_anchors.push(idp.tls_root);
        }
        let acme = acme_server::start(acme_config, clock).await?;
        Ok(Self {
            authz,
            acme,
            dir: dir.to_owned(),
            demo_password,
        })
    }

    /// Starts both servers on free ports with the system clock.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(dir, Options::default()).await
    }

    /// The TLS roots a client needs to reach both servers.
    pub fn tls_roots(&self) -> Vec<PathBuf> {
        self.authz
            .dev_ca_cert
            .iter()
            .chain(self.acme.dev_tls_ca.iter())
            .cloned()
            .collect()
    }

    /// An SDK configuration logging in as `username` with `password`.
    pub fn sdk_config(&self, username: &str, password: SecretString) -> SdkConfig {
        let mut config = SdkConfig::new(
            self.acme.directory_url.clone(),
            self.authz.base_url.clone(),
            self.acme.ca_root.clone(),
            Login::Password {
                username: username.into(),
                password,
            },
        );
        config.tls_roots = self.tls_roots();
        config
    }

    /// An SDK configuration for the seeded demo user `alice_wire`.
    pub fn demo_config(&self) -> SdkConfig {
        self.sdk_config(
            authz_server::server::DEMO_HANDLE,
            self.demo_password.clone(),
        )
    }

    /// Stops both servers.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.acme.shutdown().await?;
        self.authz.shutdown().await?;
        Ok(())
    }
}

/// Adds users to a stopped authz-server's store (the embedded store admits one process).
fn add_users(config: &authz_server::Config, users: &[ExtraUser]) -> anyhow::Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let store = authz_server::server::open_store(config)?;
    for user in users {
        if authz_server::users::by_handle(store.as_ref(), &user.handle)?.is_some() {
            continue;
        }
        authz_server::users::add(
            store.as_ref(),
            &authz_server::users::NewUser {
                handle: &user.handle,
                name: &user.name,
                team: None,
                domain: DOMAIN,
                password: &user.password,
            },
        )?;
    }
    store.flush()?;
    Ok(())
}
