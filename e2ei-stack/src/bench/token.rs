//! `token`: DPoP-bound client-credentials token issuance (RFC 6749 §4.4 + RFC 9449) against our
//! authz-server and node-oidc-provider, each started by the bench in the same run, both requiring
//! server nonces. Every request carries a fresh ES256 proof with the newest nonce the server
//! handed out; a `use_dpop_nonce` answer is retried once with the nonce it carries, as a client
//! library does. Each server runs as its own process, so its CPU time and memory are its own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use proto::clock::{Clock, SystemClock};
use proto::dpop::DpopClaims;
use proto::jws::{Algorithm, SigningKey};
use serde::Serialize;
use serde_json::Value;

use super::procs::{self, Server};
use super::stats::Percentiles;

/// One server's figures.
#[derive(Debug, Serialize)]
pub struct TokenReport {
    /// Which server.
    pub server: String,
    /// Tokens requested.
    pub requests: usize,
    /// Failures.
    pub errors: usize,
    /// First failure.
    pub first_error: Option<String>,
    /// Tokens per second.
    pub per_second: f64,
    /// Per-token latency (including a nonce retry when there was one).
    pub latency_ms: Percentiles,
    /// Requests answered `use_dpop_nonce` and sent again.
    pub nonce_retries: usize,
    /// Server CPU per issued token, ms.
    pub server_cpu_ms_per_token: f64,
    /// Peak RSS of the server, MiB.
    pub peak_rss_mib: f64,
}

/// Where and as whom to ask for tokens.
struct Target {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: String,
    key: SigningKey,
    nonce: Mutex<Option<String>>,
    retries: AtomicUsize,
}

impl Target {
    fn remember_nonce(&self, response: &reqwest::Response) {
        if let Some(n) = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            && let Ok(mut slot) = self.nonce.lock()
        {
            *slot = Some(n.to_owned());
        }
    }

    async fn one_token(&self) -> Result<()> {
        for attempt in 0..2 {
            let mut claims = DpopClaims::new("POST", &self.token_url, SystemClock.now());
            claims.nonce = self.nonce.lock().map_err(|_| anyhow!("poisoned"))?.clone();
            let proof = claims.sign(&self.key)?;
            let response = self
                .http
                .post(&self.token_url)
                .basic_auth(&self.client_id, Some(&self.client_secret))
                .header("DPoP", proof)
                .form(&[("grant_type", "client_credentials"), ("scope", "api")])
                .send()
                .await?;
            self.remember_nonce(&response);
            let status = response.status();
            let body: Value = response.json().await?;
            if status.is_success() {
                if body["token_type"] != "DPoP" || !body["access_token"].is_string() {
                    bail!("not a DPoP-bound token: {body}");
                }
                return Ok(());
            }
            if body["error"] != "use_dpop_nonce" || attempt == 1 {
                bail!("{status}: {body}");
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
        bail!("unreachable: nonce retry loop ended")
    }
}

/// Issues `requests` tokens with `concurrency` from `server` (already running).
async fn load(
    name: &str,
    server: &Server,
    target: Target,
    requests: usize,
    concurrency: usize,
) -> Result<TokenReport> {
    let target = Arc::new(target);
    // One warm-up token: the first nonce, the TLS session, the server's lazy set-up.
    target.one_token().await.context("warm-up token")?;
    target.retries.store(0, Ordering::Relaxed);
    let cpu0 = server.cpu_seconds()?;
    let out = super::load::drive(requests, concurrency, |_| {
        let target = target.clone();
        async move { target.one_token().await.map_err(|e| e.to_string()) }
    })
    .await?;
    let cpu = server.cpu_seconds()? - cpu0;
    Ok(TokenReport {
        server: name.into(),
        requests,
        errors: out.errors,
        per_second: out.per_second(),
        latency_ms: Percentiles::of(&out.latencies),
        nonce_retries: target.retries.load(Ordering::Relaxed),
        server_cpu_ms_per_token: cpu * 1e3 / out.latencies.len().max(1) as f64,
        peak_rss_mib: server.peak_rss_mib()?,
        first_error: out.first_error,
    })
}

/// The npm project holding node-oidc-provider (`npm ci` there first).
fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-peers")
}

/// Runs the same load against our authz-server and node-oidc-provider.
pub async fn run(requests: usize, concurrency: usize) -> Result<Vec<TokenReport>> {
    let dir = tempfile::tempdir()?;
    let key = SigningKey::generate(Algorithm::Es256)?;

    // Ours: dev mode seeds the confidential client `demo-service`.
    let data = dir.path().join("authz");
    let config = dir.path().join("authz.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\ndev = true\ndomain = \"{}\"\nrequire_dpop_nonce = true\n[rate_limits]\ntoken_requests_per_client = {{ per_minute = 0, burst = 0 }}\n",
            data.display(),
            crate::stack::DOMAIN
        ),
    )?;
    let ours = Server::start(
        &procs::binary("authz-server")?,
        &[
            "--config".into(),
            config.display().to_string(),
            "serve".into(),
        ],
        "authz-server listening on ",
        1,
    )
    .await?;
    let url = ours.lines[0].trim_start_matches("authz-server listening on ");
    let ca = ours.lines[1].trim_start_matches("dev root CA: ");
    let target = Target {
        http: server_kit::tls::https_client(&[ca.into()], Duration::from_secs(30))?,
        token_url: format!("{url}/token"),
        client_id: authz_server::server::DEMO_SERVICE_ID.into(),
        client_secret: std::fs::read_to_string(data.join("demo-service-secret"))?,
        key: key.clone(),
        nonce: Mutex::new(None),
        retries: AtomicUsize::new(0),
    };
    let mine = load("authz-server", &ours, target, requests, concurrency).await?;
    drop(ours);

    // node-oidc-provider on the bench's own dev certificate.
    let pki = server_kit::tls::ensure_dev_tls(dir.path(), None)?;
    let script = peers_dir().join("oidc-provider.mjs");
    if !peers_dir().join("node_modules/oidc-provider").exists() {
        bail!(
            "node-oidc-provider is not installed: run `npm ci` in {}",
            peers_dir().display()
        );
    }
    let secret = proto::random::token(256);
    let theirs = Server::start(
        Path::new("node"),
        &[
            script.display().to_string(),
            pki.cert.display().to_string(),
            pki.key.display().to_string(),
            "bench".into(),
            secret.clone(),
        ],
        "oidc-provider listening on ",
        0,
    )
    .await
    .context("node-oidc-provider (node and `npm ci` in e2ei-stack/bench-peers)")?;
    let issuer = theirs.lines[0].trim_start_matches("oidc-provider listening on ");
    let target = Target {
        http: server_kit::tls::https_client(
            std::slice::from_ref(&pki.ca_cert),
            Duration::from_secs(30),
        )?,
        token_url: format!("{issuer}/token"),
        client_id: "bench".into(),
        client_secret: secret,
        key,
        nonce: Mutex::new(None),
        retries: AtomicUsize::new(0),
    };
    let other = load("oidc-provider", &theirs, target, requests, concurrency).await?;
    Ok(vec![mine, other])
}
