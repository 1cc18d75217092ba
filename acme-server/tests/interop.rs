//! ACME clients we did not write, unchanged, against our server over HTTPS on 127.0.0.1:
//! certbot (http-01 issue, forced renewal, revocation) and lego (http-01, tls-alpn-01 and a
//! wildcard through dns-01 with pebble-challtestsrv as the DNS server; renewal, revocation).
//! The tools are Debian packages `cargo xtask test` installs; a missing tool fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use acme_server::{Config, RunningServer};
use proto::clock::SystemClock;
use x509_parser::prelude::*;

/// Longest a client run may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    acme: RunningServer,
    dir: tempfile::TempDir,
    http_port: u16,
    tls_port: u16,
    dns: Option<SocketAddr>,
}

impl Server {
    async fn start(dns: Option<SocketAddr>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("acme"),
            dev: true,
            ..Config::default()
        };
        // Wire challenges are not used here; the backend is never contacted.
        config.wire_dpop.backend_jwks_url = Some("https://127.0.0.1:9/jwks".into());
        common::loopback_standard_orders(&mut config);
        config.validation.http_port = free_port();
        config.validation.tls_port = free_port();
        config.validation.dns_server = dns;
        let (http_port, tls_port) = (config.validation.http_port, config.validation.tls_port);
        let acme = acme_server::start(config, Arc::new(SystemClock))
            .await
            .unwrap();
        Self {
            acme,
            dir,
            http_port,
            tls_port,
            dns,
        }
    }

    fn tls_ca(&self) -> PathBuf {
        self.acme.dev_tls_ca.clone().unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs a client to completion; returns its combined output, asserting success.
    async fn run(&self, program: &str, args: &[String], envs: &[(&str, String)]) -> String {
        let out = self.try_run(program, args, envs).await;
        assert!(out.0, "{program} {args:?} failed:\n{}", out.1);
        out.1
    }

    async fn try_run(
        &self,
        program: &str,
        args: &[String],
        envs: &[(&str, String)],
    ) -> (bool, String) {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("{program} must be installed (`cargo xtask test` installs it): {e}")
        });
        let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{program} {args:?} did not finish in time"))
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// The serials in the name CA's CRL.
    async fn crl_serials(&self) -> Vec<String> {
        let http =
            server_kit::tls::https_client(&[self.tls_ca()], Duration::from_secs(10)).unwrap();
        let url = self.acme.directory_url.replace("/directory", "/crl/names");
        let der = http.get(url).send().await.unwrap().bytes().await.unwrap();
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        crl.iter_revoked_certificates()
            .map(|r| r.raw_serial_as_string().replace(':', ""))
            .collect()
    }
}

/// The leaf of a PEM file: (serial hex, DNS names).
fn leaf(path: &Path) -> (String, Vec<String>) {
    let pem = std::fs::read(path).unwrap();
    let (_, pem) = parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let names = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
        .collect();
    (cert.raw_serial_as_string().replace(':', ""), names)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_issues_renews_and_revokes_with_http_01() {
    let server = Server::start(None).await;
    let env = [("REQUESTS_CA_BUNDLE", server.tls_ca().display().to_string())];
    let common = |extra: &[&str]| {
        let mut args = s(extra);
        args.extend(s(&[
            "--non-interactive",
            "--server",
            &server.acme.directory_url,
        ]));
        for (flag, dir) in [
            ("--config-dir", "config"),
            ("--work-dir", "work"),
            ("--logs-dir", "logs"),
        ] {
            args.push(flag.into());
            args.push(server.path(dir).display().to_string());
        }
        args
    };
    let port = server.http_port.to_string();
    let standalone = [
        "--standalone",
        "--http-01-port",
        &port,
        "--http-01-address",
        "127.0.0.1",
    ];
    let mut issue = vec![
        "certonly",
        "--agree-tos",
        "--register-unsafely-without-email",
        "-d",
        "certbot.example.test",
    ];
    issue.extend(standalone);
    server.run("certbot", &common(&issue), &env).await;
    let live = server.path("config/live/certbot.example.test");
    let (first, names) = leaf(&live.join("cert.pem"));
    assert_eq!(names, vec!["certbot.example.test"]);

    let mut renew = vec![
        "renew",
        "--force-renewal",
        "--no-random-sleep-on-renew",
        "--cert-name",
        "certbot.example.test",
    ];
    renew.extend(standalone);
    server.run("certbot", &common(&renew), &env).await;
    let (second, _) = leaf(&live.join("cert.pem"));
    assert_ne!(first, second, "a renewed certificate");

    let cert = live.join("cert.pem").display().to_string();
    let revoke = [
        "revoke",
        "--cert-path",
        &cert,
        "--reason",
        "keycompromise",
        "--no-delete-after-revoke",
    ];
    server.run("certbot", &common(&revoke), &env).await;
    assert!(server.crl_serials().await.contains(&second));
    // Revoking twice is refused. (certbot 2.1 on Python 3.11 then trips over josepy while
    // printing the error, so the server's answer is read from certbot's own log.)
    let (ok, _) = server.try_run("certbot", &common(&revoke), &env).await;
    let log = std::fs::read_to_string(server.path("logs/letsencrypt.log")).unwrap();
    assert!(!ok && log.contains("urn:ietf:params:acme:error:alreadyRevoked"));
}

fn lego_args(server: &Server, extra: &[&str]) -> Vec<String> {
    let mut args = s(&[
        "--server",
        &server.acme.directory_url,
        "--email",
        "ops@example.test",
        "--accept-tos",
    ]);
    args.push("--path".into());
    args.push(server.path("lego").display().to_string());
    args.extend(s(extra));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_issues_renews_and_revokes_with_http_01_and_tls_alpn_01() {
    let server = Server::start(None).await;
    let env = [(
        "LEGO_CA_CERTIFICATES",
        server.tls_ca().display().to_string(),
    )];
    let http = format!("127.0.0.1:{}", server.http_port);
    let tls = format!("127.0.0.1:{}", server.tls_port);

    let run = [
        "--domains",
        "http.example.test",
        "--http",
        "--http.port",
        &http,
        "run",
    ];
    server.run("lego", &lego_args(&server, &run), &env).await;
    let crt = server.path("lego/certificates/http.example.test.crt");
    let (first, names) = leaf(&crt);
    assert_eq!(names, vec!["http.example.test"]);

    let renew = [
        "--domains",
        "http.example.test",
        "--http",
        "--http.port",
        &http,
        "renew",
        "--days",
        "365",
        "--no-random-sleep",
    ];
    server.run("lego", &lego_args(&server, &renew), &env).await;
    let (second, _) = leaf(&crt);
    assert_ne!(first, second);

    let revoke = ["--domains", "http.example.test", "revoke"];
    server.run("lego", &lego_args(&server, &revoke), &env).await;
    assert!(server.crl_serials().await.contains(&second));

    let run = [
        "--domains",
        "alpn.example.test",
        "--tls",
        "--tls.port",
        &tls,
        "run",
    ];
    server.run("lego", &lego_args(&server, &run), &env).await;
    let (_, names) = leaf(&server.path("lego/certificates/alpn.example.test.crt"));
    assert_eq!(names, vec!["alpn.example.test"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_gets_a_wildcard_through_dns_01() {
    let dns_port = free_port();
    let management = free_port();
    let dns: SocketAddr = format!("127.0.0.1:{dns_port}").parse().unwrap();
    let _challtestsrv = tokio::process::Command::new("pebble-challtestsrv")
        .args([
            "-dns01",
            &dns.to_string(),
            "-management",
            &format!("127.0.0.1:{management}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("pebble-challtestsrv must be installed (`cargo xtask test` installs pebble)");
    let server = Server::start(Some(dns)).await;
    // lego's `exec` DNS provider calls this script; it sets the record in challtestsrv.
    let script = server.path("dns-exec.py");
    std::fs::write(
        &script,
        format!(
            "#!/usr/bin/env python3\nimport json, sys, urllib.request\n\
             action, fqdn, value = sys.argv[1], sys.argv[2], sys.argv[3]\n\
             path = '/set-txt' if action == 'present' else '/clear-txt'\n\
             body = json.dumps({{'host': fqdn, 'value': value}}).encode()\n\
             urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:{management}' + path, data=body, method='POST'))\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = [
        (
            "LEGO_CA_CERTIFICATES",
            server.tls_ca().display().to_string(),
        ),
        ("EXEC_PATH", script.display().to_string()),
        ("EXEC_PROPAGATION_TIMEOUT", "10".into()),
        ("EXEC_POLLING_INTERVAL", "1".into()),
        ("EXEC_SEQUENCE_INTERVAL", "1".into()),
    ];
    let resolver = server.dns.unwrap().to_string();
    let run = [
        "--domains",
        "*.dns.example.test",
        "--domains",
        "dns.example.test",
        "--dns",
        "exec",
        "--dns.resolvers",
        &resolver,
        "--dns.disable-cp",
        "run",
    ];
    server.run("lego", &lego_args(&server, &run), &env).await;
    let (_, names) = leaf(&server.path("lego/certificates/_.dns.example.test.crt"));
    assert_eq!(names, vec!["*.dns.example.test", "dns.example.test"]);
}
