//! `e2ei-enroll`: enroll this device, renew its certificate, or show the stored one.
//!
//! Secrets never come from the command line: the password is read from standard input or from
//! a file, a client secret at an OpenID Provider from a file (0600). Keys are stored with mode
//! 0600 in the chosen directory, beside the chain.
//!
//! With `--oidc-issuer`, the ID token of `wire-oidc-01` comes from that provider (the
//! organisation's own, the ACME server's `wire_oidc.issuer`): the user logs in there in a
//! browser, at the URL printed on standard error, which redirects to a loopback listener of this
//! process (RFC 8252 §7.3).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use client_sdk::certificate::CertificateInfo;
use client_sdk::login::LoopbackBrowser;
use client_sdk::{
    Config, Enrolled, Enrollment, IdTokenProvider, KeyAlgorithm, Login, StepPrinter, store,
};
use proto::secret::SecretString;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "e2ei-enroll",
    version,
    about = "Enroll a device for an identity certificate"
)]
struct Cli {
    /// Print the result as JSON on stdout (step lines go to stderr).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in, register this device and get its certificate.
    Enroll(Connection),
    /// Get a new certificate for the stored device, keeping its ACME account key.
    Renew(Connection),
    /// Show the identity and validity of the stored certificate.
    Show {
        /// The device directory.
        #[arg(long, env = "E2EI_DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
struct Connection {
    /// The ACME directory URL.
    #[arg(long, env = "E2EI_ACME")]
    acme: String,
    /// The authz-server URL.
    #[arg(long, env = "E2EI_AUTHZ")]
    authz: String,
    /// The identity CA's root certificate (PEM) the chain must lead to.
    #[arg(long, env = "E2EI_CA_ROOT")]
    ca_root: PathBuf,
    /// A PEM root trusted for HTTPS (repeatable).
    #[arg(long = "tls-root", env = "E2EI_TLS_ROOTS", value_delimiter = ',')]
    tls_roots: Vec<PathBuf>,
    /// The user's handle.
    #[arg(long, env = "E2EI_USER")]
    user: String,
    /// Read the password from this file (otherwise from standard input).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Key algorithm for a new enrollment: ed25519, p256, p384.
    #[arg(long, default_value = "ed25519")]
    algorithm: String,
    /// The device directory (keys 0600, chain, metadata).
    #[arg(long, env = "E2EI_DIR")]
    dir: PathBuf,
    /// Longest time one step may take, in seconds.
    #[arg(long, default_value_t = 30)]
    step_timeout: u64,
    /// Get the ID token of wire-oidc-01 from this OpenID Provider (issuer URL, https) instead
    /// of the authz-server; log in there in a browser at the printed URL.
    #[arg(long, env = "E2EI_OIDC_ISSUER", requires = "oidc_client_id")]
    oidc_issuer: Option<String>,
    /// This application's client id at that provider.
    #[arg(long, env = "E2EI_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    oidc_client_id: Option<String>,
    /// Its client secret, read from this file (0600), for a confidential client; without it
    /// the client is public (PKCE).
    #[arg(long, requires = "oidc_issuer")]
    oidc_client_secret_file: Option<PathBuf>,
    /// A PEM root trusted for HTTPS to that provider (repeatable).
    #[arg(
        long = "oidc-tls-root",
        env = "E2EI_OIDC_TLS_ROOTS",
        value_delimiter = ',',
        requires = "oidc_issuer"
    )]
    oidc_tls_roots: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The device directory holds the account and credential keys.
    io_kit::process::owner_only_files();
    io_kit::process::exit_code("e2ei-enroll", io_kit::process::block_on(run(cli)))
}

fn password(c: &Connection) -> anyhow::Result<SecretString> {
    let mut text = String::new();
    match &c.password_file {
        Some(path) => {
            text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
        None => {
            std::io::stdin().read_to_string(&mut text)?;
        }
    }
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        anyhow::bail!("empty password");
    }
    Ok(SecretString::new(text))
}

fn config(c: &Connection, json: bool) -> anyhow::Result<(Config, Arc<StepPrinter>)> {
    let login = Login::Password {
        username: c.user.clone(),
        password: password(c)?,
    };
    let mut config = Config::new(c.acme.clone(), c.authz.clone(), c.ca_root.clone(), login);
    config.tls_roots = c.tls_roots.clone();
    config.algorithm = KeyAlgorithm::parse(&c.algorithm)
        .ok_or_else(|| anyhow::anyhow!("unknown algorithm {:?}", c.algorithm))?;
    config.step_timeout = Duration::from_secs(c.step_timeout.max(1));
    config.id_token_provider = id_token_provider(c)?;
    let printer = if json {
        StepPrinter::stderr()
    } else {
        StepPrinter::stdout()
    };
    Ok((config, Arc::new(printer)))
}

/// The `--oidc-*` provider: a loopback redirect, the URL to open printed on standard error.
fn id_token_provider(c: &Connection) -> anyhow::Result<Option<IdTokenProvider>> {
    let (Some(issuer), Some(client_id)) = (&c.oidc_issuer, &c.oidc_client_id) else {
        return Ok(None);
    };
    let shown = issuer.clone();
    let browser = LoopbackBrowser::new(move |url: &str| {
        eprintln!("log in at {shown} in a browser: {url}");
    });
    let mut provider = IdTokenProvider::new(issuer.clone(), client_id.clone(), Arc::new(browser));
    provider.tls_roots = c.oidc_tls_roots.clone();
    if let Some(path) = &c.oidc_client_secret_file {
        let secret = String::from_utf8(io_kit::files::read_private(path)?)
            .map_err(|_| anyhow::anyhow!("{}: not UTF-8", path.display()))?;
        let secret = secret.trim_end_matches(['\r', '\n']);
        if secret.is_empty() {
            anyhow::bail!("{}: empty client secret", path.display());
        }
        provider.client_secret = Some(SecretString::new(secret));
    }
    Ok(Some(provider))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Enroll(c) => {
            let (config, printer) = config(&c, cli.json)?;
            let enrolled = Enrollment::new(config).observer(printer).run().await?;
            finish(&c, &enrolled, cli.json)
        }
        Command::Renew(c) => {
            let previous = store::previous(&c.dir).map_err(anyhow::Error::msg)?;
            let (config, printer) = config(&c, cli.json)?;
            let enrolled = Enrollment::new(config)
                .renewing(previous)
                .observer(printer)
                .run()
                .await?;
            finish(&c, &enrolled, cli.json)
        }
        Command::Show { dir } => {
            let (metadata, chain) = store::load(&dir).map_err(anyhow::Error::msg)?;
            let info = client_sdk::certificate::info(&chain).map_err(anyhow::Error::msg)?;
            print_info(&info, &metadata.device.client_id, &dir, cli.json)
        }
    }
}

fn finish(c: &Connection, enrolled: &Enrolled, json: bool) -> anyhow::Result<()> {
    store::save(&c.dir, enrolled).map_err(anyhow::Error::msg)?;
    print_info(
        &enrolled.certificate,
        &enrolled.device.client_id,
        &c.dir,
        json,
    )
}

fn print_info(
    info: &CertificateInfo,
    client_id: &str,
    dir: &std::path::Path,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    let now = proto::clock::Clock::now(&proto::clock::SystemClock);
    if json {
        let value = json!({
            "client_id": client_id,
            "certificate": info,
            "not_before": proto::rfc3339::format(info.not_before),
            "not_after": proto::rfc3339::format(info.not_after),
            "expired": info.not_after < now,
            "dir": dir,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(out, "device     {client_id}")?;
        write!(out, "{}", info.describe("", now))?;
        writeln!(out, "stored in  {}", dir.display())?;
    }
    Ok(())
}
