//! Both servers as their own processes on fixed loopback ports (so a restart keeps their URLs),
//! for the crash and log tests: started with the operator CLI's users, killed, restarted,
//! stopped with SIGTERM, their logs optionally captured at trace level.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod acme_requests;
pub mod operator;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use client_sdk::{Config, Login};
use e2ei_stack::bench::procs::{self, Server};
use e2ei_stack::stack::DOMAIN;
use proto::secret::SecretString;

pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A server process that can be killed and started again with the same arguments.
pub struct Managed {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub ready: &'static str,
    pub extra: usize,
    pub log: Option<PathBuf>,
    pub server: Server,
}

impl Managed {
    pub async fn start(
        program: PathBuf,
        args: Vec<String>,
        ready: &'static str,
        extra: usize,
        log: Option<PathBuf>,
    ) -> Self {
        let server = Server::start_logging(&program, &args, ready, extra, log.as_deref())
            .await
            .unwrap();
        Self {
            program,
            args,
            ready,
            extra,
            log,
            server,
        }
    }

    /// Starts it again with the same arguments (after it stopped).
    pub async fn restart(&mut self) {
        self.server = Server::start_logging(
            &self.program,
            &self.args,
            self.ready,
            self.extra,
            self.log.as_deref(),
        )
        .await
        .unwrap();
    }

    pub async fn kill_and_restart(&mut self) {
        self.server.child.start_kill().unwrap();
        self.server.child.wait().await.unwrap();
        self.restart().await;
    }

    /// SIGTERM; the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.server.child.id().unwrap();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), self.server.child.wait())
            .await
            .expect("the server did not stop within 30 s of SIGTERM")
            .unwrap()
    }
}

pub fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Both servers as processes, with the users `bench0..` added: one of each on the embedded
/// store ([`Servers::start`]), or replicas of each on PostgreSQL behind round-robin balancers
/// ([`Servers::start_replicated`]), whose URLs the clients are given.
pub struct Servers {
    pub authz: Vec<Managed>,
    pub acme: Vec<Managed>,
    pub authz_url: String,
    pub directory: String,
    pub roots: Vec<PathBuf>,
    pub ca_root: PathBuf,
    pub acme_data: PathBuf,
    pub balancers: Vec<e2ei_stack::balancer::Running>,
}

/// The authz-server as a process with `users` added: (server, URL, dev CA path).
pub async fn start_authz(
    dir: &Path,
    users: usize,
    config: &str,
    log: Option<PathBuf>,
) -> (Managed, String, String) {
    let (mut replicas, url, ca) = start_authz_replicas(dir, users, config, log, None, 1).await;
    (replicas.remove(0), url, ca)
}

/// `count` authz-servers on one data directory (keys and dev PKI made by the first), with
/// `users` added; `public_url` when they sit behind a balancer: (servers, URL, dev CA path).
async fn start_authz_replicas(
    dir: &Path,
    users: usize,
    config: &str,
    log: Option<PathBuf>,
    public_url: Option<&str>,
    count: usize,
) -> (Vec<Managed>, String, String) {
    let authz_bin = procs::binary("authz-server").unwrap();
    let authz_data = dir.join("authz");
    let authz_toml = dir.join("authz.toml");
    std::fs::write(&authz_toml, config).unwrap();
    procs::add_users_with(&authz_bin, &authz_data, Some(&authz_toml), users)
        .await
        .unwrap();
    let mut replicas = Vec::new();
    for _ in 0..count {
        let authz_listen = free_port().to_string();
        let mut arguments = args(&[
            "--config",
            authz_toml.to_str().unwrap(),
            "--data-dir",
            authz_data.to_str().unwrap(),
            "serve",
            "--dev",
            "--listen",
            &authz_listen,
            "--domain",
            DOMAIN,
        ]);
        if let Some(url) = public_url {
            arguments.extend(args(&["--public-url", url]));
        }
        replicas.push(
            Managed::start(
                authz_bin.clone(),
                arguments,
                "authz-server listening on ",
                1,
                log.clone(),
            )
            .await,
        );
    }
    let url = replicas[0].server.lines[0]
        .trim_start_matches("authz-server listening on ")
        .to_owned();
    let ca = replicas[0].server.lines[1]
        .trim_start_matches("dev root CA: ")
        .to_owned();
    (replicas, url, ca)
}

/// The address a managed server listens on (its `--listen` argument).
fn listen_address(server: &Managed) -> SocketAddr {
    let at = server.args.iter().position(|a| a == "--listen").unwrap();
    server.args[at + 1].parse().unwrap()
}

impl Servers {
    /// Both servers; with `logs`, their trace-level logs go to `logs/{authz,acme}.log`.
    pub async fn start(dir: &Path, users: usize, authz_config: &str, logs: Option<&Path>) -> Self {
        Self::start_with(dir, users, authz_config, "", logs, None, 1).await
    }

    /// [`Servers::start`] with `config` in both servers' configuration files.
    pub async fn start_both_with(
        dir: &Path,
        users: usize,
        config: &str,
        logs: Option<&Path>,
    ) -> Self {
        Self::start_with(dir, users, config, config, logs, None, 1).await
    }

    /// `replicas` of each server on the database of `pg`, behind balancers.
    pub async fn start_replicated(
        dir: &Path,
        users: usize,
        authz_config: &str,
        pg: &server_kit::testing::TestPostgres,
        replicas: usize,
    ) -> Self {
        Self::start_with(dir, users, authz_config, "", None, Some(pg), replicas).await
    }

    async fn start_with(
        dir: &Path,
        users: usize,
        authz_config: &str,
        acme_extra: &str,
        logs: Option<&Path>,
        pg: Option<&server_kit::testing::TestPostgres>,
        replicas: usize,
    ) -> Self {
        let store = pg.map_or_else(String::new, |pg| {
            format!(
                "[store]\nurl = {:?}\npassword_file = {:?}\n",
                pg.url(),
                pg.password_file().display().to_string()
            )
        });
        let listeners = (replicas > 1).then(|| {
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            (
                server_kit::serve::bind(any).unwrap(),
                server_kit::serve::bind(any).unwrap(),
            )
        });
        let public = |l: &std::net::TcpListener| format!("https://{}", l.local_addr().unwrap());
        let (authz_public, acme_public) = match &listeners {
            Some((authz, acme)) => (Some(public(authz)), Some(public(acme))),
            None => (None, None),
        };
        let acme_bin = procs::binary("acme-server").unwrap();
        let acme_data = dir.join("acme");
        let (authz, authz_url, authz_ca) = start_authz_replicas(
            dir,
            users,
            &format!("{authz_config}\n{store}"),
            logs.map(|l| l.join("authz.log")),
            authz_public.as_deref(),
            replicas,
        )
        .await;
        let acme_toml = dir.join("acme.toml");
        // A kill of the authz-server fails validations in flight: not the devices' fault.
        let acme_config = format!(
            "{}failed_validations_per_account = {{ per_minute = 0, burst = 0 }}\n\
             failed_validations_per_identifier = {{ per_minute = 0, burst = 0 }}\n{store}\n\
             {acme_extra}",
            e2ei_stack::bench::acme::UNLIMITED
        );
        std::fs::write(&acme_toml, acme_config).unwrap();
        let mut acme = Vec::new();
        for _ in 0..replicas {
            let acme_listen = free_port().to_string();
            let mut arguments = args(&[
                "--config",
                acme_toml.to_str().unwrap(),
                "--data-dir",
                acme_data.to_str().unwrap(),
                "serve",
                "--dev",
                "--listen",
                &acme_listen,
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
                arguments.extend(args(&["--public-url", url]));
            }
            acme.push(
                Managed::start(
                    acme_bin.clone(),
                    arguments,
                    "acme-server directory ",
                    2,
                    logs.map(|l| l.join("acme.log")),
                )
                .await,
            );
        }
        let line = |i: usize, prefix: &str| {
            acme[0].server.lines[i]
                .trim_start_matches(prefix)
                .to_owned()
        };
        let directory = line(0, "acme-server directory ");
        let ca_root = PathBuf::from(line(1, "identity CA root: "));
        let acme_tls = PathBuf::from(line(2, "dev TLS root CA: "));
        let roots = vec![PathBuf::from(authz_ca), acme_tls];
        let mut balancers = Vec::new();
        if let Some((authz_listener, acme_listener)) = listeners {
            for (listener, server, replicas) in [
                (authz_listener, "authz", &authz),
                (acme_listener, "acme", &acme),
            ] {
                let backends: Vec<SocketAddr> = replicas.iter().map(listen_address).collect();
                balancers.push(
                    e2ei_stack::balancer::start(listener, &dir.join(server), &backends, &roots)
                        .unwrap(),
                );
            }
        }
        Self {
            authz,
            acme,
            authz_url,
            directory,
            roots,
            ca_root,
            acme_data,
            balancers,
        }
    }

    pub fn sdk_config(&self, user: usize) -> Config {
        let mut config = Config::new(
            self.directory.clone(),
            self.authz_url.clone(),
            self.ca_root.clone(),
            Login::Password {
                username: format!("bench{user}"),
                password: SecretString::new(procs::password(user)),
            },
        );
        config.tls_roots = self.roots.clone();
        config.step_timeout = Duration::from_secs(20);
        config
    }

    pub fn http(&self) -> reqwest::Client {
        server_kit::tls::https_client(&self.roots, Duration::from_secs(20)).unwrap()
    }

    /// An SDK ACME client for `key` with its account (created, or found for a known key), the
    /// account URL and the directory.
    pub async fn acme_account(
        &self,
        key: proto::jws::SigningKey,
    ) -> (client_sdk::acme::AcmeClient, String, proto::acme::Directory) {
        let http = self.http();
        let mut acme = client_sdk::acme::AcmeClient::connect(http.clone(), &self.directory, key, 3)
            .await
            .unwrap();
        let kid = acme.account().await.unwrap();
        let directory = http
            .get(&self.directory)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (acme, kid, directory)
    }
}
