//! `acme-server`: run the ACME server, or create its CA.
//!
//! Configuration comes from `--config FILE` (TOML), then environment variables (`ACME_*`),
//! then flags.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
}

#[derive(Debug, Subcommand)]
enum CaAction {
    /// Create a root and an intermediate (ECDSA P-256) in the data directory.
    Init {
        /// Name used in the CA subjects ("{name} Root CA", "{name} Intermediate CA").
        #[arg(long, default_value = "e2ei")]
        name: String,
    },
}

fn main() -> ExitCode {
    server_kit::process::init_logging();
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
        Command::Ca {
            action: CaAction::Init { name },
        } => {
            let paths = config.ca_paths();
            acme_server::ca::init(&paths, &name)?;
            println!("root certificate: {}", paths.root_cert.display());
            println!(
                "intermediate certificate: {}",
                paths.intermediate_cert.display()
            );
            Ok(())
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = acme_server::start(config, Arc::new(SystemClock)).await?;
        // A closed stdout (a supervisor that stopped reading) must not take the server down.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "acme-server directory {}", server.directory_url);
        let _ = writeln!(out, "identity CA root: {}", server.ca_root.display());
        if let Some(ca) = &server.dev_tls_ca {
            let _ = writeln!(out, "dev TLS root CA: {}", ca.display());
        }
        server_kit::process::shutdown_signal().await?;
        server.shutdown().await?;
        Ok(())
    })
}
