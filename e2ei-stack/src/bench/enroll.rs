//! `enroll`: N devices of N distinct users run the whole enrollment with concurrency C against
//! both servers running as their own processes (HTTPS on loopback, sled on disk).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use client_sdk::{Config, Enrollment, Login, Observer, Step};
use proto::secret::SecretString;
use serde::Serialize;

use super::procs::{self, Server};
use super::stats::Percentiles;
use crate::stack::DOMAIN;

/// The figures of one run.
#[derive(Debug, Serialize)]
pub struct EnrollReport {
    /// Devices enrolled (attempted).
    pub devices: usize,
    /// Concurrency.
    pub concurrency: usize,
    /// Failed enrollments.
    pub errors: usize,
    /// The first error, if any.
    pub first_error: Option<String>,
    /// Wall time of the load phase, seconds.
    pub wall_seconds: f64,
    /// Enrollments per second.
    pub per_second: f64,
    /// Whole-enrollment latency, ms.
    pub latency_ms: Percentiles,
    /// Per-step latency, ms.
    pub steps_ms: BTreeMap<String, Percentiles>,
    /// authz-server CPU seconds per enrollment.
    pub authz_cpu_ms_per_enrollment: f64,
    /// acme-server CPU seconds per enrollment.
    pub acme_cpu_ms_per_enrollment: f64,
    /// Peak RSS, MiB.
    pub authz_peak_rss_mib: f64,
    /// Peak RSS, MiB.
    pub acme_peak_rss_mib: f64,
    /// Store growth per enrollment, bytes (both stores).
    pub store_bytes_per_enrollment: f64,
}

#[derive(Default)]
struct Steps(Mutex<Vec<(Step, Duration)>>);

impl Observer for Steps {
    fn finished(&self, step: Step, elapsed: Duration, outcome: Result<&str, &client_sdk::Error>) {
        if outcome.is_ok()
            && let Ok(mut v) = self.0.lock()
        {
            v.push((step, elapsed));
        }
    }
}

/// Every bench client connects from 127.0.0.1: the per-address bounds that keep one real
/// client from taking a server (connections, password checks in flight, logins not yet
/// succeeded) would measure the bench's own address instead of the servers, so they are lifted.
const ONE_ADDRESS_CONNECTIONS: &str = "[limits]\nmax_connections_per_address = 100000\n";
const ONE_ADDRESS: &str = "[limits]\nmax_connections_per_address = 100000\n\
    [password_checks]\nper_address = 100000\nqueue = 100000\n\
    [rate_limits]\nfailed_logins_per_ip = { per_minute = 0, burst = 0 }\n";

/// Runs `devices` enrollments with `concurrency`.
pub async fn run(devices: usize, concurrency: usize) -> Result<EnrollReport> {
    let dir = tempfile::tempdir()?;
    let (authz_bin, acme_bin) = (
        procs::binary("authz-server")?,
        procs::binary("acme-server")?,
    );
    let authz_data = dir.path().join("authz");
    let acme_data = dir.path().join("acme");
    procs::add_users(&authz_bin, &authz_data, devices).await?;
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let authz_config = dir.path().join("authz.toml");
    std::fs::write(&authz_config, ONE_ADDRESS)?;
    let authz = Server::start(
        &authz_bin,
        &s(&[
            "--config",
            &authz_config.display().to_string(),
            "--data-dir",
            &authz_data.display().to_string(),
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--domain",
            DOMAIN,
        ]),
        "authz-server listening on ",
        1,
    )
    .await?;
    let authz_url = authz.lines[0]
        .trim_start_matches("authz-server listening on ")
        .to_owned();
    let authz_ca = authz.lines[1]
        .trim_start_matches("dev root CA: ")
        .to_owned();
    let acme_config = dir.path().join("acme.toml");
    std::fs::write(
        &acme_config,
        format!("{}{ONE_ADDRESS_CONNECTIONS}", super::acme::UNLIMITED),
    )?;
    let acme = Server::start(
        &acme_bin,
        &s(&[
            "--config",
            &acme_config.display().to_string(),
            "--data-dir",
            &acme_data.display().to_string(),
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--domain",
            DOMAIN,
            "--trust-anchor",
            &authz_ca,
            "--dpop-target",
            &format!("{authz_url}/clients/{{device-id}}/access-token"),
            "--backend-jwks-url",
            &format!("{authz_url}/jwks"),
            "--oidc-issuer",
            &authz_url,
        ]),
        "acme-server directory ",
        2,
    )
    .await?;
    let directory = acme.lines[0]
        .trim_start_matches("acme-server directory ")
        .to_owned();
    let ca_root = acme.lines[1]
        .trim_start_matches("identity CA root: ")
        .to_owned();
    let acme_tls = acme.lines[2]
        .trim_start_matches("dev TLS root CA: ")
        .to_owned();

    let disk_before =
        procs::disk_usage(&authz_data.join("store")) + procs::disk_usage(&acme_data.join("store"));
    let (authz_cpu0, acme_cpu0) = (authz.cpu_seconds()?, acme.cpu_seconds()?);
    let steps = Arc::new(Steps::default());
    let out = super::load::drive(devices, concurrency, |i| {
        let mut config = Config::new(
            directory.clone(),
            authz_url.clone(),
            ca_root.clone(),
            Login::Password {
                username: format!("bench{i}"),
                password: SecretString::new(procs::password(i)),
            },
        );
        config.tls_roots = vec![authz_ca.clone().into(), acme_tls.clone().into()];
        config.step_timeout = Duration::from_secs(60);
        let steps = steps.clone();
        async move {
            Enrollment::new(config)
                .observer(steps)
                .run()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await?;
    let wall = out.wall.as_secs_f64();
    let per_second = out.per_second();
    let n = devices.max(1) as f64;
    let authz_cpu = authz.cpu_seconds()? - authz_cpu0;
    let acme_cpu = acme.cpu_seconds()? - acme_cpu0;
    let disk_after =
        procs::disk_usage(&authz_data.join("store")) + procs::disk_usage(&acme_data.join("store"));
    let mut by_step: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for (step, d) in steps
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .iter()
    {
        by_step.entry(step.name().to_owned()).or_default().push(*d);
    }
    Ok(EnrollReport {
        devices,
        concurrency,
        errors: out.errors,
        first_error: out.first_error,
        wall_seconds: wall,
        per_second,
        latency_ms: Percentiles::of(&out.latencies),
        steps_ms: by_step
            .iter()
            .map(|(k, v)| (k.clone(), Percentiles::of(v)))
            .collect(),
        authz_cpu_ms_per_enrollment: authz_cpu * 1e3 / n,
        acme_cpu_ms_per_enrollment: acme_cpu * 1e3 / n,
        authz_peak_rss_mib: authz.peak_rss_mib()?,
        acme_peak_rss_mib: acme.peak_rss_mib()?,
        store_bytes_per_enrollment: disk_after.saturating_sub(disk_before) as f64 / n,
    })
}
