//! Starting and stopping the server: open the store, load the identity CA and, when standard
//! orders are enabled, the name CA (each created in dev mode when missing), build
//! the authorities, bind, serve HTTPS with rustls (ring provider), shut down gracefully.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use proto::clock::Clock;
use server_kit::serve::Serving;
use server_kit::store::Store;

use crate::ca::{Authorities, CertificateAuthority, Hierarchy};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::nonce::{MemoryNonces, NonceService, SharedNonces};
use crate::ra::RegistrationAuthority;
use crate::sa::StorageAuthority;
use crate::va::ValidationAuthority;
use crate::wfe::urls::Urls;
use crate::wfe::{AppState, router};

/// Most anti-replay nonces outstanding at once.
const MAX_OUTSTANDING_NONCES: usize = 100_000;

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    /// Bound address.
    pub addr: SocketAddr,
    /// Public base URL.
    pub base_url: String,
    /// The directory URL.
    pub directory_url: String,
    /// In dev mode, the root CA certificate of the TLS certificate.
    pub dev_tls_ca: Option<PathBuf>,
    /// The identity CA's root certificate (what relying parties trust).
    pub ca_root: PathBuf,
    /// The name CA's root certificate, when standard orders are enabled (what TLS clients of
    /// the named servers trust; never an identity trust anchor).
    pub names_ca_root: Option<PathBuf>,
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

/// Opens the configured store (`[store]`): the embedded one in the data directory, or the
/// PostgreSQL database. The data directory is made (0700) either way: the CA and the audit
/// log live there.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>> {
    server_kit::files::private_dir(&config.data_dir)?;
    Ok(config.store.open(&config.data_dir, "acme")?)
}

/// Starts the server with `config`, reading time from `clock`.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer> {
    config.validate()?;
    let limits = config.limits.clone();
    server_kit::files::private_dir(&config.data_dir)?;
    let store: Arc<dyn Store> = config.store.open_to_serve(&config.data_dir, "acme")?;
    let ca_paths = config.ca_paths();
    let names_ca_paths = config
        .standard_orders
        .enabled
        .then(|| config.names_ca_paths());
    let load = |paths: &crate::ca::CaPaths, hierarchy| {
        if config.dev {
            CertificateAuthority::load_or_init(paths, "e2ei dev", hierarchy)
        } else {
            CertificateAuthority::load(paths, hierarchy)
        }
    };
    let ca = load(&ca_paths, Hierarchy::Identity)?;
    let names_ca = names_ca_paths
        .as_ref()
        .map(|paths| load(paths, Hierarchy::Names))
        .transpose()?;

    let public_host = url::Url::parse(&config.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    let (cert, key, dev_tls_ca) = if config.dev {
        let tls = server_kit::tls::ensure_dev_tls(&config.data_dir, public_host.as_deref())?;
        (tls.cert, tls.key, Some(tls.ca_cert))
    } else {
        let missing = || Error::Config("tls_cert and tls_key are required".into());
        (
            config.tls_cert.clone().ok_or_else(missing)?,
            config.tls_key.clone().ok_or_else(missing)?,
            None,
        )
    };
    let tls = server_kit::tls::server_config(&cert, &key)?;
    let listener = server_kit::serve::bind(config.listen)?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(e.to_string()))?;
    let base_url = config.base_url(addr);
    let urls = Urls::new(&base_url);

    let ca = Authorities::new(
        ca.with_crl_url(urls.crl()),
        names_ca.map(|ca| ca.with_crl_url(urls.names_crl())),
    )?;
    let config = Arc::new(config);
    let va = ValidationAuthority::new(&config)?;
    let sa = StorageAuthority::new(store.clone())?;
    let cleanup = {
        let (cleanup, clock, keep) = (
            sa.cleanup(),
            clock.clone(),
            config.cleanup.keep_expired_secs,
        );
        config.cleanup.start(
            "acme-server",
            Arc::new(move || {
                cleanup
                    .sweep(clock.now(), keep)
                    .map_err(|e| server_kit::Error::Storage(e.to_string()))
            }),
        )
    };
    let audit = server_kit::audit::AuditLog::open(&config.data_dir)?;
    // The front end gets reads and durability; the registration authority alone can write.
    let (storage, durability) = (sa.reader().clone(), sa.durability());
    // Replicas on one database must recognise each other's nonces and redeem each once.
    let nonces: Arc<dyn NonceService> = if store.shared() {
        Arc::new(SharedNonces::new(
            sa.nonce_claims(),
            config.lifetimes.nonce,
        )?)
    } else {
        Arc::new(MemoryNonces::new(
            config.lifetimes.nonce,
            MAX_OUTSTANDING_NONCES,
        ))
    };
    let rate_limits =
        crate::ra::RaRateLimits::new(&config.rate_limits, store.shared().then_some(&store));
    let ra = RegistrationAuthority::new(
        sa,
        va,
        ca,
        config.clone(),
        clock.clone(),
        audit,
        rate_limits,
    );
    let directory_url = urls.directory();
    let state = Arc::new(AppState {
        config,
        urls,
        ra,
        storage,
        durability,
        nonces,
        clock,
    });
    let serving =
        server_kit::serve::serve_tls(listener, tls, router(state), "acme-server", &limits)?;
    tracing::info!(
        %addr,
        %directory_url,
        workers = tokio::runtime::Handle::current().metrics().num_workers(),
        "acme-server listening"
    );
    Ok(RunningServer {
        addr,
        base_url,
        directory_url,
        dev_tls_ca,
        ca_root: ca_paths.root_cert,
        names_ca_root: names_ca_paths.map(|paths| paths.root_cert),
        serving,
        store,
        cleanup,
    })
}
