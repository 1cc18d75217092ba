//! `acme-server`: run the ACME server, or create its CA.
//!
//! Configuration comes from `--config FILE` (TOML), then environment variables (`ACME_*`),
//! then flags.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use acme_server::ca::{Hierarchy, Made};
use acme_server::config::Config;
use clap::{Parser, Subcommand};
use proto::clock::SystemClock;

#[derive(Debug, Parser)]
#[command(
    name = "acme-server",
    version,
    about = "RFC 8555 ACME server and identity CA for Wire end-to-end identity"
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "ACME_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory (store, CA, dev PKI).
    #[arg(long, env = "ACME_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "ACME_LISTEN")]
        listen: Option<SocketAddr>,
        /// Public base URL.
        #[arg(long, env = "ACME_PUBLIC_URL")]
        public_url: Option<String>,
        /// Wire domain to certify (repeatable; replaces the configured list).
        #[arg(long = "domain", env = "ACME_DOMAINS", value_delimiter = ',')]
        domains: Vec<String>,
        /// Access-token URL template of the backend (`{device-id}` is filled in).
        #[arg(long, env = "ACME_DPOP_TARGET")]
        dpop_target: Option<String>,
        /// The backend's JWKS URL.
        #[arg(long, env = "ACME_BACKEND_JWKS_URL")]
        backend_jwks_url: Option<String>,
        /// The OpenID issuer.
        #[arg(long, env = "ACME_OIDC_ISSUER")]
        oidc_issuer: Option<String>,
        /// The OAuth client id of ID tokens.
        #[arg(long, env = "ACME_OIDC_CLIENT_ID")]
        oidc_client_id: Option<String>,
        /// A PEM root trusted for outbound HTTPS (repeatable).
        #[arg(
            long = "trust-anchor",
            env = "ACME_TRUST_ANCHORS",
            value_delimiter = ','
        )]
        trust_anchors: Vec<PathBuf>,
        /// Development mode: generate the TLS certificate and the CA.
        #[arg(long, env = "ACME_DEV")]
        dev: bool,
    },
    /// Manage the CA.
    Ca {
        #[command(subcommand)]
        action: CaAction,
    },
    /// Manage External Account Binding keys (run while the server is stopped).
    Eab {
        #[command(subcommand)]
        action: EabAction,
    },
    /// The store: export all records to a file, import a file into an empty store, verify,
    /// back up the embedded store while serving.
    Store {
        #[command(subcommand)]
        action: server_kit::store::transfer::StoreCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EabAction {
    /// Create a key; prints its kid and the base64url HMAC key to hand to one subscriber.
    Add {
        /// The key id (default: random).
        #[arg(long)]
        kid: Option<String>,
    },
    /// List keys and the accounts they bound (never the HMAC keys).
    List,
}

#[derive(Debug, Subcommand)]
enum CaAction {
    /// Create a root and an intermediate (ECDSA P-256) in the data directory: the identity CA
    /// and, when `[standard_orders] enabled`, the name CA (`ca/names/`), each only if missing.
    Init {
        /// Name used in the CA subjects ("{name} Root CA", "{name} Intermediate CA").
        #[arg(long, default_value = "e2ei")]
        name: String,
    },
}

/// mimalloc: fewer cycles in allocation on the request path than glibc's malloc across worker
/// threads; see docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    server_kit::process::init();
    server_kit::process::exit_code("acme-server", run(Cli::parse()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command {
        Command::Serve {
            listen,
            public_url,
            domains,
            dpop_target,
            backend_jwks_url,
            oidc_issuer,
            oidc_client_id,
            trust_anchors,
            dev,
        } => {
            config.listen = listen.unwrap_or(config.listen);
            config.public_url = public_url.unwrap_or(config.public_url);
            if !domains.is_empty() {
                config.domains = domains;
            }
            config.wire_dpop.target = dpop_target.unwrap_or(config.wire_dpop.target);
            if backend_jwks_url.is_some() {
                config.wire_dpop.backend_jwks_url = backend_jwks_url;
            }
            config.wire_oidc.issuer = oidc_issuer.unwrap_or(config.wire_oidc.issuer);
            config.wire_oidc.client_id = oidc_client_id.unwrap_or(config.wire_oidc.client_id);
            config.trust_anchors.extend(trust_anchors);
            config.dev |= dev;
            serve(config)
        }
        Command::Eab { action } => eab_command(&config, action),
        Command::Store { action } => {
            println!(
                "{}",
                server_kit::store::transfer::open_and_run(
                    &action,
                    &config.store,
                    &config.data_dir,
                    "acme"
                )?
            );
            Ok(())
        }
        Command::Ca {
            action: CaAction::Init { name },
        } => {
            server_kit::files::private_dir(&config.data_dir)?;
            ca_init(&config, &name)
        }
    }
}

/// Creates the identity CA and, when standard orders are enabled, the name CA; each only when
/// missing, and refuses when both exist (nothing is ever overwritten).
fn ca_init(config: &Config, name: &str) -> anyhow::Result<()> {
    let mut wanted = vec![(Hierarchy::Identity, config.ca_paths())];
    if config.standard_orders.enabled {
        wanted.push((Hierarchy::Names, config.names_ca_paths()));
    }
    let mut created = false;
    for (hierarchy, paths) in wanted {
        let label = hierarchy.label();
        if paths.intermediate_cert.exists() && !acme_server::ca::pending_marker(&paths).exists() {
            println!(
                "{label} CA exists, kept: {}",
                paths.intermediate_cert.display()
            );
            continue;
        }
        match acme_server::ca::init(&paths, name, hierarchy)? {
            Made::AlreadyComplete => {
                created = true;
                println!(
                    "{label} CA exists (an earlier init had finished), kept: {}",
                    paths.intermediate_cert.display()
                );
                continue;
            }
            Made::AfterInterrupted => println!(
                "an earlier {label} CA init was interrupted; what it left was removed and the CA made again"
            ),
            Made::New => {}
        }
        created = true;
        println!("{label} root certificate: {}", paths.root_cert.display());
        println!(
            "{label} intermediate certificate: {}",
            paths.intermediate_cert.display()
        );
    }
    if !created {
        anyhow::bail!("the CA exists; refusing to overwrite it");
    }
    Ok(())
}

fn eab_command(config: &Config, action: EabAction) -> anyhow::Result<()> {
    let store = acme_server::server::open_store(config)?;
    let sa = acme_server::sa::StorageAuthority::new(store)?;
    match action {
        EabAction::Add { kid } => {
            let kid = kid.unwrap_or_else(|| proto::random::token(96));
            let mac_key = proto::random::token(256);
            let added = sa.add_eab_key(&acme_server::model::EabKey {
                kid: kid.clone(),
                mac_key: proto::secret::SecretString::new(mac_key.clone()),
                created_at: proto::clock::Clock::now(&SystemClock),
                account_id: None,
            })?;
            if !added {
                anyhow::bail!("an EAB key {kid} exists");
            }
            println!("kid      {kid}");
            println!("hmac key {mac_key}");
        }
        EabAction::List => {
            for key in sa.reader().eab_keys()? {
                println!(
                    "{}\t{}\t{}",
                    key.kid,
                    proto::rfc3339::format(key.created_at),
                    key.account_id.as_deref().unwrap_or("unused")
                );
            }
        }
    }
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    config.runtime.clone().block_on(async {
        // Caught before the ready line, so a stop right after it is graceful.
        let stop = server_kit::process::ShutdownSignal::install()?;
        let server = acme_server::start(config, Arc::new(SystemClock)).await?;
        // A closed stdout (a supervisor that stopped reading) must not take the server down.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "acme-server directory {}", server.directory_url);
        let _ = writeln!(out, "identity CA root: {}", server.ca_root.display());
        if let Some(ca) = &server.dev_tls_ca {
            let _ = writeln!(out, "dev TLS root CA: {}", ca.display());
        }
        if let Some(root) = &server.names_ca_root {
            let _ = writeln!(out, "name CA root (standard orders): {}", root.display());
        }
        stop.recv().await;
        server.shutdown().await?;
        Ok(())
    })
}
