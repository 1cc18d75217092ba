//! `e2ei-demo`: the whole service on this machine. Starts the authz-server and the acme-server
//! in-process on 127.0.0.1 (ephemeral ports, TLS, fresh dev PKIs and stores in a temp dir),
//! enrolls the demo user's device end to end with the SDK printing every step, then prints the
//! certificate and its PEM. With `--serve` it keeps both servers running for `e2ei-enroll`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use client_sdk::{Enrollment, KeyAlgorithm, StepPrinter};
use e2ei_stack::stack::Stack;
use proto::clock::{Clock, SystemClock};

#[derive(Debug, Parser)]
#[command(
    name = "e2ei-demo",
    version,
    about = "Both servers on loopback and one device enrolled end to end"
)]
struct Cli {
    /// Keep both servers running after the demo enrollment and print how to use them.
    #[arg(long)]
    serve: bool,
    /// Key algorithm: ed25519, p256 or p384.
    #[arg(long, default_value = "ed25519")]
    algorithm: String,
    /// Keep the servers' data here instead of a temp dir (reused across runs).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    // Server request logs only when asked for: the demo's own output is the steps.
    if std::env::var_os("RUST_LOG").is_some() {
        server_kit::process::init_logging();
    }
    let cli = Cli::parse();
    server_kit::process::exit_code("e2ei-demo", server_kit::process::block_on(run(cli)))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let algorithm = KeyAlgorithm::parse(&cli.algorithm)
        .ok_or_else(|| anyhow::anyhow!("unknown algorithm {:?}", cli.algorithm))?;
    let temp = tempfile::tempdir()?;
    let dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    // With --serve, caught before the servers are announced, so a stop right after is graceful.
    let stop = if cli.serve {
        Some(server_kit::process::ShutdownSignal::install()?)
    } else {
        None
    };
    let stack = Stack::start(&dir).await?;
    let mut out = std::io::stdout();
    writeln!(out, "authz-server  {}", stack.authz.base_url)?;
    writeln!(out, "acme-server   {}", stack.acme.directory_url)?;
    writeln!(
        out,
        "\nenrolling the demo user's device ({}):",
        cli.algorithm
    )?;

    let mut config = stack.demo_config();
    config.algorithm = algorithm;
    let enrolled = Enrollment::new(config)
        .observer(Arc::new(StepPrinter::stdout()))
        .run()
        .await?;
    let c = &enrolled.certificate;
    writeln!(
        out,
        "\ncertificate (chain verified up to {}):",
        stack.acme.ca_root.display()
    )?;
    write!(out, "{}", c.describe("  ", SystemClock.now()))?;
    writeln!(out, "\n{}", enrolled.chain_pem.trim_end())?;

    if cli.serve {
        let roots: Vec<String> = stack
            .tls_roots()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let password_file = dir.join("authz/demo-password");
        writeln!(out, "\nserving until Ctrl-C:")?;
        writeln!(out, "  identity CA root  {}", stack.acme.ca_root.display())?;
        writeln!(out, "  TLS roots         {}", roots.join(" "))?;
        writeln!(
            out,
            "  demo user         {} (password in {})",
            authz_server::server::DEMO_HANDLE,
            password_file.display()
        )?;
        writeln!(
            out,
            "\n  e2ei-enroll enroll --acme {} --authz {} --ca-root {} {} --user {} --password-file {} --dir ./device",
            stack.acme.directory_url,
            stack.authz.base_url,
            stack.acme.ca_root.display(),
            roots
                .iter()
                .map(|r| format!("--tls-root {r}"))
                .collect::<Vec<_>>()
                .join(" "),
            authz_server::server::DEMO_HANDLE,
            password_file.display(),
        )?;
        out.flush()?;
        if let Some(stop) = stop {
            stop.recv().await;
        }
    }
    stack.shutdown().await?;
    drop(temp);
    Ok(())
}
