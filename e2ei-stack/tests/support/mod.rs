//! Both servers as their own processes on fixed loopback ports (so a restart keeps their URLs),
//! for the crash and log tests: started with the operator CLI's users, killed, restarted,
//! stopped with SIGTERM, their logs optionally captured at trace level.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod acme_requests;

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

/// Both servers as processes, with the users `bench0..` added.
pub struct Servers {
    pub authz: Managed,
    pub acme: Managed,
    pub authz_url: String,
    pub directory: String,
    pub roots: Vec<PathBuf>,
    pub ca_root: PathBuf,
    pub acme_data: PathBuf,
}

/// The authz-server as a process with `users` added: (server, URL, dev CA path).
pub async fn start_authz(
    dir: &Path,
    users: usize,
    config: &str,
    log: Option<PathBuf>,
) -> (Managed, String, String) {
    let authz_bin = procs::binary("authz-server").unwrap();
    let authz_data = dir.join("authz");
    procs::add_users(&authz_bin, &authz_data, users)
        .await
        .unwrap();
    let authz_toml = dir.join("authz.toml");
    std::fs::write(&authz_toml, config).unwrap();
    let authz_listen = free_port().to_string();
    let authz = Managed::start(
        authz_bin,
        args(&[
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
        ]),
        "authz-server listening on ",
        1,
        log,
    )
    .await;
    let url = authz.server.lines[0]
        .trim_start_matches("authz-server listening on ")
        .to_owned();
    let ca = authz.server.lines[1]
        .trim_start_matches("dev root CA: ")
        .to_owned();
    (authz, url, ca)
}

impl Servers {
    /// Both servers; with `logs`, their trace-level logs go to `logs/{authz,acme}.log`.
    pub async fn start(dir: &Path, users: usize, authz_config: &str, logs: Option<&Path>) -> Self {
        let acme_bin = procs::binary("acme-server").unwrap();
        let acme_data = dir.join("acme");
        let (authz, authz_url, authz_ca) =
            start_authz(dir, users, authz_config, logs.map(|l| l.join("authz.log"))).await;
        let acme_toml = dir.join("acme.toml");
        // A kill of the authz-server fails validations in flight: not the devices' fault.
        let acme_config = format!(
            "{}failed_validations_per_account = {{ per_minute = 0, burst = 0 }}\n\
             failed_validations_per_identifier = {{ per_minute = 0, burst = 0 }}\n",
            e2ei_stack::bench::acme::UNLIMITED
        );
        std::fs::write(&acme_toml, acme_config).unwrap();
        let acme_listen = free_port().to_string();
        let acme = Managed::start(
            acme_bin,
            args(&[
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
            ]),
            "acme-server directory ",
            2,
            logs.map(|l| l.join("acme.log")),
        )
        .await;
        let line =
            |i: usize, prefix: &str| acme.server.lines[i].trim_start_matches(prefix).to_owned();
        let directory = line(0, "acme-server directory ");
        let ca_root = PathBuf::from(line(1, "identity CA root: "));
        let acme_tls = PathBuf::from(line(2, "dev TLS root CA: "));
        Self {
            authz,
            acme,
            authz_url,
            directory,
            roots: vec![PathBuf::from(authz_ca), acme_tls],
            ca_root,
            acme_data,
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
