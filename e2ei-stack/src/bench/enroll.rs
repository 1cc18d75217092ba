//! `enroll`: N devices of N distinct users run the whole enrollment with concurrency C against
//! both servers running as their own processes (HTTPS on loopback), after a warm-up of other
//! devices that is not measured ([`Load`]), on the embedded store
//! (SQLite, or sled on disk) or on a PostgreSQL cluster started for the run, optionally with R
//! replicas of each server behind a round-robin [`crate::balancer`] (every request to the next
//! replica). The balancer runs inside the bench process, on the same cores as the servers: to
//! compare one replica with several on the same path, put it in front of one replica too
//! ([`Layout::balanced`]).

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
    /// Devices enrolled before, not measured.
    pub warmup_devices: usize,
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
    /// `embedded` or `postgres`.
    pub store: &'static str,
    /// Replicas of each server (their CPU is summed above; peak RSS is the largest).
    pub replicas: usize,
    /// Whether requests went through the balancer.
    pub balanced: bool,
    /// Each server process's `[runtime] cpus` (0: every CPU of the machine).
    pub cpus_per_replica: usize,
    /// The bench process's own CPU per enrollment, ms: the device clients, and the balancer
    /// when there is one. It shares the machine with the servers.
    pub bench_cpu_ms_per_enrollment: f64,
    /// The PostgreSQL server's CPU per enrollment (all its processes), ms.
    pub database_cpu_ms_per_enrollment: Option<f64>,
    /// The servers' connections to PostgreSQL when the measured load started and when it
    /// ended: the same when the warm-up opened every connection the load needed.
    pub database_connections: Option<[usize; 2]>,
}

/// Where the servers keep their records in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchStore {
    /// The embedded store (SQLite) in each server's data directory (one replica).
    Embedded,
    /// The older embedded engine, sled, made in each data directory before the servers start
    /// (one replica): the comparison behind the choice of SQLite.
    Sled,
    /// A PostgreSQL cluster started for the run (`initdb` into a temp dir, loopback).
    Postgres,
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

/// A free loopback port.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// How many of each server a run starts, on how many CPUs each, and whether requests reach
/// them through the balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Replicas of each server.
    pub replicas: usize,
    /// Through the round-robin balancer (always with more than one replica).
    pub balanced: bool,
    /// Each server process's `[runtime] cpus` (0: every CPU of the machine).
    pub cpus_per_replica: usize,
}

impl Layout {
    /// `replicas` of each server, behind the balancer when there is more than one, sharing the
    /// machine's CPUs as `docs/operations.md` advises for replicas on one machine.
    pub fn replicas(replicas: usize) -> Self {
        Self {
            replicas,
            balanced: replicas > 1,
            cpus_per_replica: Self::share_of_the_machine(replicas),
        }
    }

    /// The CPUs each of `replicas` of a server plans for so that together they plan for the
    /// machine's: its CPUs divided among them, at least one. 0 for a single replica (all).
    fn share_of_the_machine(replicas: usize) -> usize {
        if replicas <= 1 {
            return 0;
        }
        (server_kit::runtime::RuntimeConfig::given() / replicas).max(1)
    }
}

/// What a run asks of the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Enrollments measured.
    pub devices: usize,
    /// Enrollments in flight at once.
    pub concurrency: usize,
    /// Enrollments of other devices in each round of the warm-up, with the same concurrency,
    /// not measured (0: no warm-up). The warm-up does once what a long-running deployment has
    /// done long ago and the measured run must not pay for: the servers' connections to the
    /// database and the balancer's to the servers opened, their caches and allocators grown to
    /// the load. A pool opens a connection only when its open ones are all busy at once, which
    /// with the load spread over replicas may take more than one round: rounds follow until
    /// every pool is full, at most [`WARMUP_ROUNDS_AT_MOST`].
    pub warmup: usize,
}

/// Rounds of warm-up at most.
pub const WARMUP_ROUNDS_AT_MOST: usize = 4;

impl Load {
    /// `devices` with `concurrency`, after warm-up rounds of as many enrollments as are in
    /// flight at once.
    pub fn new(devices: usize, concurrency: usize) -> Self {
        Self {
            devices,
            concurrency,
            warmup: concurrency,
        }
    }
}

/// Runs `load` on `store`, with `layout`'s replicas.
pub async fn run(load: Load, store: BenchStore, layout: Layout) -> Result<EnrollReport> {
    let Load {
        devices,
        concurrency,
        warmup,
    } = load;
    let Layout {
        replicas, balanced, ..
    } = layout;
    anyhow::ensure!(replicas >= 1, "at least one replica");
    anyhow::ensure!(
        balanced || replicas == 1,
        "several replicas are reached through the balancer"
    );
    anyhow::ensure!(
        replicas == 1 || store == BenchStore::Postgres,
        "replicas share a database: use --store postgres"
    );
    let dir = tempfile::tempdir()?;
    let pg = (store == BenchStore::Postgres).then(server_kit::testing::TestPostgres::start);
    let store_section = pg.as_ref().map_or_else(String::new, |pg| {
        format!(
            "[store]\nurl = {:?}\npassword_file = {:?}\n",
            pg.url(),
            pg.password_file().display().to_string()
        )
    });
    let (authz_bin, acme_bin) = (
        procs::binary("authz-server")?,
        procs::binary("acme-server")?,
    );
    let authz_data = dir.path().join("authz");
    let acme_data = dir.path().join("acme");
    if store == BenchStore::Sled {
        for data in [&authz_data, &acme_data] {
            server_kit::files::private_dir(data)?;
            drop(server_kit::store::SledStore::open(&data.join("store"))?);
        }
    }
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let authz_config = dir.path().join("authz.toml");
    let runtime_section = format!("[runtime]\ncpus = {}\n", layout.cpus_per_replica);
    std::fs::write(
        &authz_config,
        format!("{ONE_ADDRESS}{store_section}{runtime_section}"),
    )?;
    // Users `bench0..` enroll in the measured run, the next ones in the warm-up.
    procs::add_users_with(
        &authz_bin,
        &authz_data,
        Some(&authz_config),
        devices + warmup * WARMUP_ROUNDS_AT_MOST,
    )
    .await?;
    // With replicas, clients reach each server through a balancer whose URL is every
    // replica's public URL.
    let balancer_listeners = if balanced {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Some((server_kit::serve::bind(any)?, server_kit::serve::bind(any)?))
    } else {
        None
    };
    let public_url = |l: &std::net::TcpListener| -> Result<String> {
        Ok(format!("https://{}", l.local_addr()?))
    };
    let (authz_public, acme_public) = match &balancer_listeners {
        Some((authz, acme)) => (Some(public_url(authz)?), Some(public_url(acme)?)),
        None => (None, None),
    };
    let mut authz = Vec::new();
    let mut authz_addrs = Vec::new();
    for _ in 0..replicas {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let mut args = s(&[
            "--config",
            &authz_config.display().to_string(),
            "--data-dir",
            &authz_data.display().to_string(),
            "serve",
            "--dev",
            "--listen",
            &listen,
            "--domain",
            DOMAIN,
        ]);
        if let Some(url) = &authz_public {
            args.extend(s(&["--public-url", url]));
        }
        authz.push(Server::start(&authz_bin, &args, "authz-server listening on ", 1).await?);
        authz_addrs.push(listen.parse()?);
    }
    let authz_url = authz[0].lines[0]
        .trim_start_matches("authz-server listening on ")
        .to_owned();
    let authz_ca = authz[0].lines[1]
        .trim_start_matches("dev root CA: ")
        .to_owned();
    let acme_config = dir.path().join("acme.toml");
    std::fs::write(
        &acme_config,
        format!(
            "{}{ONE_ADDRESS_CONNECTIONS}{store_section}{runtime_section}",
            super::acme::UNLIMITED
        ),
    )?;
    let mut acme = Vec::new();
    let mut acme_addrs = Vec::new();
    for _ in 0..replicas {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let mut args = s(&[
            "--config",
            &acme_config.display().to_string(),
            "--data-dir",
            &acme_data.display().to_string(),
            "serve",
            "--dev",
            "--listen",
            &listen,
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
        ]);
        if let Some(url) = &acme_public {
            args.extend(s(&["--public-url", url]));
        }
        acme.push(Server::start(&acme_bin, &args, "acme-server directory ", 2).await?);
        acme_addrs.push(listen.parse()?);
    }
    let directory = acme[0].lines[0]
        .trim_start_matches("acme-server directory ")
        .to_owned();
    let ca_root = acme[0].lines[1]
        .trim_start_matches("identity CA root: ")
        .to_owned();
    let acme_tls = acme[0].lines[2]
        .trim_start_matches("dev TLS root CA: ")
        .to_owned();
    let roots: Vec<std::path::PathBuf> = vec![authz_ca.clone().into(), acme_tls.into()];
    let mut balancers = Vec::new();
    if let Some((authz_listener, acme_listener)) = balancer_listeners {
        for (listener, data, backends) in [
            (authz_listener, &authz_data, &authz_addrs),
            (acme_listener, &acme_data, &acme_addrs),
        ] {
            balancers.push(crate::balancer::start(listener, data, backends, &roots)?);
        }
    }
    let database_bytes = || -> Result<u64> {
        Ok(match &pg {
            Some(pg) => pg.psql("SELECT pg_database_size('e2ei')").parse()?,
            None => {
                procs::disk_usage(&authz_data.join("store"))
                    + procs::disk_usage(&acme_data.join("store"))
            }
        })
    };
    let database_cpu = || -> Result<f64> {
        pg.as_ref()
            .map_or(Ok(0.0), |pg| procs::tree_cpu_seconds(pg.server_pid()))
    };
    let database_connections = || -> Result<usize> {
        pg.as_ref().map_or(Ok(0), |pg| {
            Ok(pg
                .psql(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
                     AND pid <> pg_backend_pid()",
                )
                .parse()?)
        })
    };
    let cpu = |servers: &[Server]| -> Result<f64> { servers.iter().map(Server::cpu_seconds).sum() };

    let bench_cpu = || procs::cpu_seconds(std::process::id());

    let steps = Arc::new(Steps::default());
    let enroll = |i: usize, steps: Arc<Steps>| {
        let mut config = Config::new(
            directory.clone(),
            authz_url.clone(),
            ca_root.clone(),
            Login::Password {
                username: format!("bench{i}"),
                password: SecretString::new(procs::password(i)),
            },
        );
        config.tls_roots = roots.clone();
        config.step_timeout = Duration::from_secs(60);
        async move {
            Enrollment::new(config)
                .observer(steps)
                .run()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    let mut warmed = 0;
    let rounds = if warmup == 0 {
        0
    } else {
        WARMUP_ROUNDS_AT_MOST
    };
    // Every pool of every server process full (none with the embedded store).
    let full_pools = pg.as_ref().map_or(0, |_| {
        server_kit::store::StoreConfig::default().pool_size * 2 * replicas
    });
    for _ in 0..rounds {
        let first = devices + warmed;
        let warm = super::load::drive(warmup, concurrency, |i| {
            enroll(first + i, Arc::new(Steps::default()))
        })
        .await?;
        if let Some(e) = warm.first_error {
            anyhow::bail!(
                "warm-up: {} of {warmup} enrollments failed ({} not started after it): {e}",
                warm.errors - warm.skipped,
                warm.skipped
            );
        }
        warmed += warmup;
        if database_connections()? >= full_pools {
            break;
        }
    }
    let disk_before = database_bytes()?;
    let connections_before = database_connections()?;
    let (authz_cpu0, acme_cpu0, database_cpu0, bench_cpu0) =
        (cpu(&authz)?, cpu(&acme)?, database_cpu()?, bench_cpu()?);
    let out = super::load::drive(devices, concurrency, |i| enroll(i, steps.clone())).await?;
    let wall = out.wall.as_secs_f64();
    let per_second = out.per_second();
    let n = devices.max(1) as f64;
    let authz_cpu = cpu(&authz)? - authz_cpu0;
    let acme_cpu = cpu(&acme)? - acme_cpu0;
    let database_cpu = database_cpu()? - database_cpu0;
    let bench_cpu = bench_cpu()? - bench_cpu0;
    let disk_after = database_bytes()?;
    let connections_after = database_connections()?;
    let peak = |servers: &[Server]| -> Result<f64> {
        servers
            .iter()
            .map(Server::peak_rss_mib)
            .try_fold(0.0_f64, |max, rss| Ok(max.max(rss?)))
    };
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
        warmup_devices: warmed,
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
        authz_peak_rss_mib: peak(&authz)?,
        acme_peak_rss_mib: peak(&acme)?,
        store_bytes_per_enrollment: disk_after.saturating_sub(disk_before) as f64 / n,
        store: match store {
            BenchStore::Embedded => "embedded",
            BenchStore::Sled => "sled",
            BenchStore::Postgres => "postgres",
        },
        replicas,
        balanced,
        cpus_per_replica: layout.cpus_per_replica,
        bench_cpu_ms_per_enrollment: bench_cpu * 1e3 / n,
        database_cpu_ms_per_enrollment: pg.as_ref().map(|_| database_cpu * 1e3 / n),
        database_connections: pg.as_ref().map(|_| [connections_before, connections_after]),
    })
}
