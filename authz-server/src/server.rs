//! Starting and stopping the server: open the store, load or create keys (and in dev mode the
//! TLS PKI and the demo data of [`crate::demo`]), assemble the [`Provider`], bind, serve HTTPS
//! with rustls (ring provider), shut down gracefully.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use proto::clock::Clock;
use server_kit::serve::Serving;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::router;
use crate::provider::Provider;
use crate::store::Store;

pub use crate::demo::{
    DEMO_CLIENT_ID, DEMO_HANDLE, DEMO_JWT_SERVICE_ID, DEMO_REDIRECT_URI, DEMO_SERVICE_ID,
    DEMO_WEBAPP_ID, demo_password,
};

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
        crate::store::flush(self.store.as_ref())
    }

    /// Waits until the server stops by itself.
    pub async fn wait(self) -> Result<()> {
        Ok(self.serving.wait().await?)
    }
}

/// Opens the configured store (`[store]`): the embedded one in the data directory, or the
/// PostgreSQL database. The data directory is made (0700) either way: keys and the audit log
/// live there.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>> {
    server_kit::files::private_dir(&config.data_dir)?;
    Ok(config.store.open(&config.data_dir, "authz")?)
}

/// Opens the store for serving (see [`server_kit::store::StoreConfig::open_to_serve`]).
fn open_store_to_serve(config: &Config) -> Result<Arc<dyn Store>> {
    server_kit::files::private_dir(&config.data_dir)?;
    Ok(config.store.open_to_serve(&config.data_dir, "authz")?)
}

/// Starts the server with `config`, reading time from `clock`.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer> {
    config.validate()?;
    let limits = config.limits.clone();
    let store = open_store_to_serve(&config)?;
    let keys_dir = config.data_dir.join("keys");
    // Keys in the store when `keys rotate` may write them there while the server runs (SQLite,
    // PostgreSQL); in files on sled, which only the server may open while it runs.
    let keys = if store.written_beside_the_server() {
        crate::keys::KeyRing::shared(store.clone(), &keys_dir, clock.now())?
    } else {
        crate::keys::KeyRing::from_files(&keys_dir, clock.now())?
    };

    let public_host = url::Url::parse(&config.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    let (cert, key_path, dev_ca_cert) = if config.dev {
        let tls = server_kit::tls::ensure_dev_tls(&config.data_dir, public_host.as_deref())?;
        crate::demo::seed(store.as_ref(), &config)?;
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
    let limiters =
        crate::rate_limits::Limiters::new(&config.rate_limits, store.shared().then_some(&store));
    let passwords =
        crate::password_pool::PasswordPool::new(&config.password_checks, config.runtime.cpus())?;
    let password_threads = passwords.threads();
    let cleanup = {
        let (store, clock) = (store.clone(), clock.clone());
        let (keep, lifetimes) = (config.cleanup.keep_expired_secs, config.lifetimes.clone());
        config.cleanup.start(
            "authz-server",
            Arc::new(move || {
                crate::store::cleanup::sweep(store.as_ref(), clock.now(), keep, &lifetimes)
                    .map_err(|e| server_kit::Error::Storage(e.to_string()))
            }),
        )
    };
    let audit = server_kit::audit::AuditLog::open(&config.data_dir)?;
    let upstreams =
        crate::federation::Upstreams::load(&config.upstream, &config.upstream_tokens_key_file())?;
    let claims_sources = crate::claims_sources::ClaimsSources::load(&config.claims_source)?;
    let remote_verifiers = crate::remote_auth::RemoteVerifiers::load(&config.remote_auth)?;
    let jwt_issuers = crate::jwt_bearer::JwtBearerIssuers::load(&config.jwt_bearer_issuer)?;
    // Replicas on one database accept each other's DPoP nonces; one process draws its own.
    let dpop_nonces = if store.shared() {
        proto::dpop_nonce::NonceSource::with_secret(crate::store::secrets::dpop_nonce_key(
            store.as_ref(),
        )?)
    } else {
        proto::dpop_nonce::NonceSource::new()
    };
    let state = Arc::new(Provider {
        readiness: server_kit::health::Readiness::default(),
        claims_sources,
        audit,
        limiters,
        config,
        base_url: base_url.clone(),
        store: store.clone(),
        keys,
        clock,
        dpop_nonces,
        passwords,
        upstreams,
        remote_verifiers,
        jwt_issuers,
    });
    let serving =
        server_kit::serve::serve_tls(listener, tls, router(state), "authz-server", &limits)?;
    tracing::info!(
        %addr,
        %base_url,
        workers = tokio::runtime::Handle::current().metrics().num_workers(),
        password_workers = password_threads,
        "authz-server listening"
    );
    Ok(RunningServer {
        addr,
        base_url,
        dev_ca_cert,
        serving,
        store,
        cleanup,
    })
}
