//! Starting and stopping the server: open the store, load or create keys (and in dev mode the
//! TLS PKI and demo data), bind, serve HTTPS with rustls (ring provider), shut down gracefully.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use proto::clock::Clock;
use proto::secret::SecretString;
use server_kit::serve::Serving;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{AppState, router};
use crate::store::{SledStore, Store};
use crate::users::{NewUser, OAuthClient};

/// The handle of the demo user seeded in dev mode.
pub const DEMO_HANDLE: &str = "alice_wire";
/// The OAuth client id seeded in dev mode.
pub const DEMO_CLIENT_ID: &str = "wireapp";
/// The confidential demo client seeded in dev mode (secret in `data_dir/demo-service-secret`).
pub const DEMO_SERVICE_ID: &str = "demo-service";
/// A confidential client authenticating with `private_key_jwt`, seeded in dev mode (its ES256
/// private key in `data_dir/demo-jwt-service-key.der`; the key's thumbprint is its `kid`).
pub const DEMO_JWT_SERVICE_ID: &str = "demo-jwt-service";
/// A third-party public client seeded in dev mode (its users see the consent page).
pub const DEMO_WEBAPP_ID: &str = "demo-webapp";
/// The redirect URI of the demo client (any loopback port matches, RFC 8252 §7.3).
pub const DEMO_REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    /// Bound address.
    pub addr: SocketAddr,
    /// Public base URL (issuer).
    pub base_url: String,
    /// In dev mode, the root CA certificate clients must trust.
    pub dev_ca_cert: Option<PathBuf>,
    serving: Serving,
    store: Arc<dyn Store>,
    cleanup: Option<server_kit::cleanup::Sweeper>,
}

impl RunningServer {
    /// Counts finished background sweeps (none when `cleanup.interval_secs` is 0).
    pub fn cleanup_passes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.cleanup
            .as_ref()
            .map(server_kit::cleanup::Sweeper::passes)
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), stops the sweep, then
    /// flushes the store.
    pub async fn shutdown(self) -> Result<()> {
        self.serving.shutdown().await?;
        if let Some(cleanup) = self.cleanup {
            cleanup.stop().await;
        }
        Ok(self.store.flush()?)
    }

    /// Waits until the server stops by itself.
    pub async fn wait(self) -> Result<()> {
        Ok(self.serving.wait().await?)
    }
}

/// Opens the store of a data directory.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>> {
    server_kit::files::private_dir(&config.data_dir)?;
    Ok(Arc::new(SledStore::open(&config.data_dir.join("store"))?))
}

/// Starts the server with `config`, reading time from `clock`.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer> {
    config.validate()?;
    let limits = config.limits.clone();
    let store = open_store(&config)?;
    let key = crate::keys::load_or_create_signing_key(&config.data_dir.join("keys"))?;
    let retired_keys = crate::keys::retired_keys(&config.data_dir.join("keys"), clock.now())?;

    let public_host = url::Url::parse(&config.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    let (cert, key_path, dev_ca_cert) = if config.dev {
        let tls = server_kit::tls::ensure_dev_tls(&config.data_dir, public_host.as_deref())?;
        seed_demo(store.as_ref(), &config)?;
        (tls.cert, tls.key, Some(tls.ca_cert))
    } else {
        let cert = config
            .tls_cert
            .clone()
            .ok_or_else(|| Error::Config("tls_cert missing".into()))?;
        let key = config
            .tls_key
            .clone()
            .ok_or_else(|| Error::Config("tls_key missing".into()))?;
        (cert, key, None)
    };
    let tls = server_kit::tls::server_config(&cert, &key_path)?;

    let listener = server_kit::serve::bind(config.listen)?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(e.to_string()))?;
    let base_url = config.base_url(addr);
    let limiters = crate::rate_limits::Limiters::new(&config.rate_limits);
    let passwords = crate::password_pool::PasswordPool::new(&config.password_checks)?;
    let cleanup = {
        let (store, clock) = (store.clone(), clock.clone());
        let (keep, lifetimes) = (config.cleanup.keep_expired_secs, config.lifetimes.clone());
        config.cleanup.start(
            "authz-server",
            Arc::new(move || {
                crate::cleanup::sweep(store.as_ref(), clock.now(), keep, &lifetimes)
                    .map_err(|e| server_kit::Error::Storage(e.to_string()))
            }),
        )
    };
    let audit = server_kit::audit::AuditLog::open(&config.data_dir)?;
    let state = Arc::new(AppState {
        audit,
        limiters,
        config,
        base_url: base_url.clone(),
        store: store.clone(),
        key,
        clock,
        dpop_nonces: proto::dpop_nonce::NonceSource::new(),
        retired_keys,
        passwords,
    });
    let serving =
        server_kit::serve::serve_tls(listener, tls, router(state), "authz-server", &limits)?;
    tracing::info!(%addr, %base_url, "authz-server listening");
    Ok(RunningServer {
        addr,
        base_url,
        dev_ca_cert,
        serving,
        store,
        cleanup,
    })
}

/// Dev mode: the demo user (password in `data_dir/demo-password`, 0600, created once; no email
/// address) and the demo clients, each allowed the scopes its part of the demo needs: the Wire
/// app the identity scopes (among them the `openid email profile` OIDC libraries ask for by
/// default, and `offline_access`) and the device scope, the third-party web app the OpenID
/// Connect scopes only, the two services `api` for client credentials.
fn seed_demo(store: &dyn Store, config: &Config) -> Result<()> {
    let scopes = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect());
    let device_scope = config.device_access.scope.as_str();
    if crate::users::client(store, DEMO_CLIENT_ID)?.is_none() {
        crate::users::add_client(
            store,
            &OAuthClient {
                id: DEMO_CLIENT_ID.into(),
                redirect_uris: vec![DEMO_REDIRECT_URI.into()],
                secret_sha256: None,
                consent_required: false,
                jwks: None,
                scopes: scopes(&[
                    "openid",
                    "profile",
                    "email",
                    "offline_access",
                    "wire_client_id",
                    device_scope,
                ]),
            },
        )?;
    }
    if crate::users::client(store, DEMO_WEBAPP_ID)?.is_none() {
        crate::users::add_client(
            store,
            &OAuthClient {
                id: DEMO_WEBAPP_ID.into(),
                redirect_uris: vec![DEMO_REDIRECT_URI.into()],
                secret_sha256: None,
                consent_required: true,
                jwks: None,
                scopes: scopes(&["openid", "profile", "email", "offline_access"]),
            },
        )?;
    }
    if crate::users::client(store, DEMO_SERVICE_ID)?.is_none() {
        let (secret, digest) = crate::users::new_client_secret();
        server_kit::files::write_private(
            &config.data_dir.join("demo-service-secret"),
            secret.expose().as_bytes(),
        )?;
        crate::users::add_client(
            store,
            &OAuthClient {
                id: DEMO_SERVICE_ID.into(),
                redirect_uris: vec![DEMO_REDIRECT_URI.into()],
                secret_sha256: Some(digest),
                consent_required: false,
                jwks: None,
                scopes: scopes(&["api"]),
            },
        )?;
    }
    if crate::users::client(store, DEMO_JWT_SERVICE_ID)?.is_none() {
        let key = proto::jws::SigningKey::generate(proto::jws::Algorithm::Es256)
            .map_err(|e| Error::Config(e.to_string()))?;
        server_kit::files::write_private(
            &config.data_dir.join("demo-jwt-service-key.der"),
            key.pkcs8_der().expose(),
        )?;
        let kid = key.public_jwk().thumbprint();
        let mut jwk = key.public_jwk().clone();
        jwk.kid = Some(kid);
        crate::users::add_client(
            store,
            &OAuthClient {
                id: DEMO_JWT_SERVICE_ID.into(),
                redirect_uris: Vec::new(),
                secret_sha256: None,
                consent_required: false,
                jwks: Some(proto::jwk::JwkSet { keys: vec![jwk] }.to_json()),
                scopes: scopes(&["api"]),
            },
        )?;
    }
    if crate::users::by_handle(store, DEMO_HANDLE)?.is_none() {
        let password = demo_password(config)?;
        crate::users::add(
            store,
            &NewUser {
                handle: DEMO_HANDLE,
                name: "Alice Smith",
                team: Some("wire"),
                domain: &config.domain,
                password: &password,
            },
        )?;
        tracing::info!(
            handle = DEMO_HANDLE,
            "seeded the demo user; its password is in demo-password"
        );
    }
    Ok(())
}

/// The demo user's password, created on first use.
pub fn demo_password(config: &Config) -> Result<SecretString> {
    let path = config.data_dir.join("demo-password");
    if path.exists() {
        let bytes = server_kit::files::read_private(&path)?;
        return Ok(SecretString::new(
            String::from_utf8_lossy(&bytes).trim().to_owned(),
        ));
    }
    let password = proto::random::token(96);
    server_kit::files::write_private(&path, password.as_bytes())?;
    Ok(SecretString::new(password))
}
