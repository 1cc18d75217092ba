//! `acme`: plain ACME http-01 issuance (one name per order) with concurrency C against a
//! directory URL — our acme-server and Pebble, each started by the bench in the same run with
//! the same http-01 responder (played by the bench) and the same client. The client polls
//! authorizations and orders back-to-back (no sleeps), so the servers set the pace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use client_sdk::Step;
use client_sdk::acme::AcmeClient;
use proto::acme::{Authorization, AuthorizationStatus, Identifier, Order, OrderStatus};
use proto::jws::{Algorithm, SigningKey};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::procs::{self, Server};
use super::stats::Percentiles;

/// How long one order may take before it counts as an error (a server that stops answering
/// must not hold the bench forever).
const ORDER_DEADLINE: Duration = Duration::from_secs(20);

/// The bench is one client at full speed: rate limits off (`per_minute = 0`).
pub const UNLIMITED: &str = "[rate_limits]\nnew_accounts_per_ip = { per_minute = 0, burst = 0 }\nnew_orders_per_account = { per_minute = 0, burst = 0 }\n";

/// Key authorizations served by token.
type Served = Arc<Mutex<HashMap<String, String>>>;

/// One server's figures.
#[derive(Debug, Serialize)]
pub struct AcmeReport {
    /// Which server.
    pub server: String,
    /// Orders issued.
    pub orders: usize,
    /// Failures.
    pub errors: usize,
    /// First failure.
    pub first_error: Option<String>,
    /// Certificates per second.
    pub per_second: f64,
    /// Per-order latency.
    pub latency_ms: Percentiles,
    /// Server CPU per issued certificate, ms.
    pub server_cpu_ms_per_certificate: f64,
    /// Peak RSS of the server, MiB.
    pub peak_rss_mib: f64,
}

async fn responder(listener: tokio::net::TcpListener, served: Served) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let served = served.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let token = head
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.strip_prefix("/.well-known/acme-challenge/"))
                .unwrap_or_default()
                .to_owned();
            let body = served.lock().ok().and_then(|s| s.get(&token).cloned());
            let response = match body {
                Some(b) => format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                    b.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .into(),
            };
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

async fn one_order(acme: &AcmeClient, key: &SigningKey, served: &Served, name: &str) -> Result<()> {
    let ids = [Identifier {
        kind: "dns".into(),
        value: name.into(),
    }];
    let (order_url, order) = acme.new_order(&ids).await?;
    for url in &order.authorizations {
        let authz: Authorization = acme.get(Step::Authorizations, url).await?;
        let http = authz
            .challenges
            .iter()
            .find(|c| c.kind == "http-01")
            .context("no http-01")?;
        let keyauth =
            proto::wire_id::key_authorization(&http.token, &key.public_jwk().thumbprint());
        served
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(http.token.clone(), keyauth);
        acme.answer(Step::DpopChallenge, &http.url, &json!({}))
            .await?;
        let mut status = AuthorizationStatus::Pending;
        for _ in 0..10_000 {
            let a: Authorization = acme.get(Step::Authorizations, url).await?;
            status = a.status;
            if status != AuthorizationStatus::Pending {
                break;
            }
        }
        if status != AuthorizationStatus::Valid {
            bail!("authorization ended {status:?}");
        }
    }
    let mut order: Order = acme.get(Step::Order, &order_url).await?;
    for _ in 0..10_000 {
        if order.status == OrderStatus::Ready {
            break;
        }
        order = acme.get(Step::Order, &order_url).await?;
    }
    let csr_key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&csr_key)?.der().to_vec();
    acme.post(
        Step::Finalize,
        &order.finalize,
        Some(&json!({"csr": proto::b64::encode(&csr)})),
    )
    .await?;
    for _ in 0..10_000 {
        order = acme.get(Step::Order, &order_url).await?;
        if order.status != OrderStatus::Processing && order.status != OrderStatus::Ready {
            break;
        }
    }
    if order.status != OrderStatus::Valid {
        bail!("order ended {:?}", order.status);
    }
    acme.certificate(&order.certificate.context("no certificate URL")?)
        .await?;
    Ok(())
}

/// Issues `orders` certificates with `concurrency` against `directory` (trusting `tls_root`),
/// served by process `pid`.
pub async fn load(
    server: &str,
    pid: u32,
    directory: &str,
    tls_root: &std::path::Path,
    served: &Served,
    orders: usize,
    concurrency: usize,
) -> Result<AcmeReport> {
    let http = server_kit::tls::https_client(&[tls_root.to_owned()], Duration::from_secs(10))?;
    let key = SigningKey::generate(Algorithm::Es256)?;
    let mut acme = AcmeClient::connect(http, directory, key.clone(), 5).await?;
    acme.account().await?;
    let acme = Arc::new(acme);
    let cpu0 = procs::cpu_seconds(pid)?;
    let out = super::load::drive(orders, concurrency, |i| {
        let (acme, key, served) = (acme.clone(), key.clone(), served.clone());
        async move {
            let name = format!("o{i}.bench.test");
            let order = one_order(&acme, &key, &served, &name);
            match tokio::time::timeout(ORDER_DEADLINE, order).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no certificate within {ORDER_DEADLINE:?}")),
            }
        }
    })
    .await?;
    let cpu = procs::cpu_seconds(pid)? - cpu0;
    Ok(AcmeReport {
        server: server.into(),
        orders,
        server_cpu_ms_per_certificate: cpu * 1e3 / out.latencies.len().max(1) as f64,
        peak_rss_mib: procs::peak_rss_mib(pid)?,
        errors: out.errors,
        per_second: out.per_second(),
        latency_ms: Percentiles::of(&out.latencies),
        first_error: out.first_error,
    })
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs the same load against our acme-server and Pebble.
pub async fn run(orders: usize, concurrency: usize) -> Result<Vec<AcmeReport>> {
    let dir = tempfile::tempdir()?;
    let served: Served = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http_port = listener.local_addr()?.port();
    tokio::spawn(responder(listener, served.clone()));

    // Ours.
    let data = dir.path().join("acme");
    let config = dir.path().join("acme.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\ndev = true\n[wire_dpop]\nbackend_jwks_url = \"https://127.0.0.1:9/jwks\"\n[standard_orders]\nenabled = true\n[validation]\nhttp_port = {http_port}\nresolve_to = \"127.0.0.1\"\nallowed_networks = [\"127.0.0.0/8\"]\n{UNLIMITED}",
            data.display()
        ),
    )?;
    let ours = Server::start(
        &procs::binary("acme-server")?,
        &[
            "--config".into(),
            config.display().to_string(),
            "serve".into(),
        ],
        "acme-server directory ",
        2,
    )
    .await?;
    let directory = ours.lines[0]
        .trim_start_matches("acme-server directory ")
        .to_owned();
    let tls = ours.lines[2]
        .trim_start_matches("dev TLS root CA: ")
        .to_owned();
    let mine = load(
        "acme-server",
        ours.child.id().context("acme-server exited")?,
        &directory,
        std::path::Path::new(&tls),
        &served,
        orders,
        concurrency,
    )
    .await?;
    drop(ours);

    // Pebble, with challtestsrv answering every name with 127.0.0.1.
    let dns_port = free_port()?;
    let _dns = tokio::process::Command::new("pebble-challtestsrv")
        .args([
            "-dns01",
            &format!("127.0.0.1:{dns_port}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
        ])
        .args(["-defaultIPv6", ""])
        .args(["-management", &format!("127.0.0.1:{}", free_port()?)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("pebble-challtestsrv (Debian package pebble)")?;
    let pki = server_kit::tls::ensure_dev_tls(dir.path(), None)?;
    let pebble_port = free_port()?;
    let pebble_config = dir.path().join("pebble.json");
    std::fs::write(
        &pebble_config,
        json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{pebble_port}"),
            "managementListenAddress": format!("127.0.0.1:{}", free_port()?),
            "certificate": pki.cert, "privateKey": pki.key,
            "httpPort": http_port, "tlsPort": free_port()?,
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
        }})
        .to_string(),
    )?;
    let pebble = tokio::process::Command::new("pebble")
        .args([
            "-config",
            &pebble_config.display().to_string(),
            "-dnsserver",
            &format!("127.0.0.1:{dns_port}"),
        ])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("pebble (Debian package pebble)")?;
    let pebble_dir = format!("https://127.0.0.1:{pebble_port}/dir");
    let probe =
        server_kit::tls::https_client(std::slice::from_ref(&pki.ca_cert), Duration::from_secs(2))?;
    let mut up = false;
    for _ in 0..200 {
        if probe.get(&pebble_dir).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if !up {
        bail!("pebble did not start");
    }
    let theirs = load(
        "pebble",
        pebble.id().context("pebble exited")?,
        &pebble_dir,
        &pki.ca_cert,
        &served,
        orders,
        concurrency,
    )
    .await?;
    Ok(vec![mine, theirs])
}
