//! Crash safety. Both servers run as their own processes on fixed loopback ports while devices
//! enroll through the SDK; a killer sends SIGKILL to one server or the other at random moments
//! (at least [`KILLS`] times) and starts it again on the same data directory. Around every kill
//! a probe redeems a single-use value (an ACME nonce; a backend nonce and a DPoP proof) and
//! replays it after the restart. An enrollment that a kill interrupts is run again by the SDK
//! until it completes. Afterwards:
//!
//! - every certificate an enrollment received is listed in its account's orders and downloadable;
//! - no serial was issued twice and no order has two certificates;
//! - every order with a certificate has all its authorizations and a challenge of each `valid`;
//! - no replayed nonce, backend nonce or DPoP `jti` was accepted after a restart;
//! - both servers stop cleanly on SIGTERM.
//!
//! The counts are printed (`cargo nextest run -p e2ei-stack --test crash --no-capture`).
//!
//! The second test does the same with three replicas of each server on one PostgreSQL database
//! behind round-robin balancers: a random replica is killed while the others serve, and the
//! invariants are read from the database.
//!
//! The third test: SIGTERM while a request is in flight; the request completes, new
//! connections are refused, the process exits 0, and what the request wrote is there after a
//! restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acme_server::sa::{AuthzRecord, CertificateRecord, OrderRecord, trees};
use client_sdk::authz::Authz;
use client_sdk::enroll::{identity_of, wire_dpop_claims};
use client_sdk::{Config, Enrolled, Enrollment, Login, Step};
use e2ei_stack::bench::procs;
use proto::acme::{Account, AuthorizationStatus, Challenge, ChallengeStatus, Order, OrderStatus};
use proto::acme_jws::{KeyId, sign_request};
use proto::clock::{Clock, SystemClock};
use proto::jws::{Algorithm, SigningKey};
use proto::secret::SecretString;
use server_kit::store::Store;
use support::{Servers, start_authz};
use tokio::sync::watch;

/// SIGKILLs per run, at least.
const KILLS: usize = 24;
/// Devices enrolling at once (each a user of its own).
const WORKERS: usize = 3;
/// Attempts one enrollment gets before the harness gives up on it.
const MAX_ATTEMPTS: usize = 12;
/// The whole run, at most.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// A random delay of `min..max` milliseconds: when the next kill lands.
fn jitter(min: u64, max: u64) -> Duration {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&proto::random::bytes(8));
    Duration::from_millis(min + u64::from_be_bytes(raw) % (max - min))
}

/// Redeems a backend nonce with a DPoP proof, then after a restart replays both: the same
/// request, and a fresh nonce with the old proof's `jti`.
struct AuthzProbe {
    authz: Authz,
    bearer: String,
    device: String,
    identity: client_sdk::certificate::Identity,
    key: SigningKey,
    challenge: Challenge,
}

struct Redeemed {
    proof: String,
    jti: String,
}

impl AuthzProbe {
    async fn new(servers: &Servers, user: usize) -> Self {
        let config = servers.sdk_config(user);
        let authz = Authz::new(servers.http(), &servers.authz_url);
        let tokens = authz.login(&config, None, Step::Login).await.unwrap();
        let device = authz.register_device(&tokens.access_token).await.unwrap();
        let identity = identity_of(&tokens.id_token, &device).unwrap();
        let challenge = Challenge {
            kind: "wire-dpop-01".into(),
            url: "https://acme.probe.example/challenge/1".into(),
            status: ChallengeStatus::Pending,
            token: proto::random::token(128),
            validated: None,
            error: None,
            target: Some(format!(
                "{}/clients/{}/access-token",
                servers.authz_url, device.id
            )),
        };
        Self {
            authz,
            bearer: tokens.access_token,
            device: device.id,
            identity,
            key: SigningKey::generate(Algorithm::Es256).unwrap(),
            challenge,
        }
    }

    /// A proof with a fresh backend nonce (and `jti`, unless one is given).
    async fn proof(&self, jti: Option<&str>) -> Redeemed {
        let nonce = self
            .authz
            .backend_nonce(&self.bearer, &self.device)
            .await
            .unwrap();
        let mut claims =
            wire_dpop_claims(&self.identity, &self.challenge, &nonce, SystemClock.now()).unwrap();
        if let Some(jti) = jti {
            claims.jti = jti.to_owned();
        }
        Redeemed {
            proof: claims.sign(&self.key).unwrap(),
            jti: claims.jti,
        }
    }

    async fn redeem(&self) -> Redeemed {
        let redeemed = self.proof(None).await;
        self.authz
            .access_token(&self.bearer, &self.device, &redeemed.proof)
            .await
            .unwrap();
        redeemed
    }

    /// How many of the two replays were accepted (must be none).
    async fn replays_accepted(&self, redeemed: &Redeemed) -> usize {
        let same = self
            .authz
            .access_token(&self.bearer, &self.device, &redeemed.proof)
            .await;
        let old_jti = self.proof(Some(&redeemed.jti)).await;
        let fresh_nonce_old_jti = self
            .authz
            .access_token(&self.bearer, &self.device, &old_jti.proof)
            .await;
        usize::from(same.is_ok()) + usize::from(fresh_nonce_old_jti.is_ok())
    }
}

/// Uses an ACME nonce for a POST-as-GET of its account, then replays the identical request
/// after a restart.
struct AcmeProbe {
    http: reqwest::Client,
    key: SigningKey,
    kid: String,
    new_nonce: String,
}

impl AcmeProbe {
    async fn new(servers: &Servers) -> Self {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let (_, kid, directory) = servers.acme_account(key.clone()).await;
        Self {
            http: servers.http(),
            key,
            kid,
            new_nonce: directory.new_nonce,
        }
    }

    async fn post(&self, body: &str) -> u16 {
        self.http
            .post(&self.kid)
            .header("content-type", "application/jose+json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A request signed with a fresh nonce, sent once (it must pass).
    async fn redeem(&self) -> String {
        let response = self.http.head(&self.new_nonce).send().await.unwrap();
        let nonce = response.headers()["replay-nonce"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = sign_request(&self.key, KeyId::Kid(&self.kid), &nonce, &self.kid, None).unwrap();
        assert_eq!(self.post(&body).await, 200);
        body
    }
}

/// What the workers produced.
#[derive(Default)]
struct Outcomes {
    enrolled: Mutex<Vec<Enrolled>>,
    interrupted: AtomicUsize,
}

/// Enrolls again and again as `user` until `stop`; an interrupted enrollment is run again once
/// the servers are back, up to [`MAX_ATTEMPTS`] times.
async fn worker(
    config: Config,
    up: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    outcomes: Arc<Outcomes>,
) -> Result<(), String> {
    while !*stop.borrow() {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Enrollment::new(config.clone()).run().await {
                Ok(enrolled) => {
                    outcomes.enrolled.lock().unwrap().push(enrolled);
                    break;
                }
                Err(e) if attempts >= MAX_ATTEMPTS => {
                    return Err(format!("gave up after {attempts} attempts: {e}"));
                }
                Err(_) => {
                    outcomes.interrupted.fetch_add(1, Ordering::SeqCst);
                    let mut up = up.clone();
                    up.wait_for(|up| *up).await.map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// Every certificate an enrollment received is in its account's orders list and downloads
/// unchanged; returns the violations.
async fn listed_and_downloadable(servers: &Servers, enrolled: &[Enrolled]) -> Vec<String> {
    let mut violations = Vec::new();
    for e in enrolled {
        let key = SigningKey::from_pkcs8_der(e.algorithm.jose(), e.account_key.expose()).unwrap();
        let (acme, kid, _) = servers.acme_account(key).await;
        assert_eq!(kid, e.account_url);
        let account: Account = acme.get(Step::Account, &e.account_url).await.unwrap();
        let list: serde_json::Value = acme.get(Step::Order, &account.orders).await.unwrap();
        let mut found = false;
        for url in list["orders"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u.as_str())
        {
            let order: Order = acme.get(Step::Order, url).await.unwrap();
            if let Some(cert) = &order.certificate
                && acme.certificate(cert).await.unwrap() == e.chain_pem
            {
                found = order.status == OrderStatus::Valid;
            }
        }
        if !found {
            violations.push(format!(
                "the certificate of {} is not listed and downloadable",
                e.account_url
            ));
        }
    }
    violations
}

/// The store-level invariants of the acme-server's records; returns the violations and the
/// number of certificates.
fn store_invariants(store: &dyn Store) -> (Vec<String>, usize) {
    let certificates: Vec<CertificateRecord> = store.scan_json(trees::CERTIFICATES, "").unwrap();
    let mut violations = Vec::new();
    let mut serials = HashSet::new();
    let mut orders = HashSet::new();
    for cert in &certificates {
        if !serials.insert(cert.serial.clone()) {
            violations.push(format!("serial {} issued twice", cert.serial));
        }
        if !orders.insert(cert.order_id.clone()) {
            violations.push(format!("order {} has two certificates", cert.order_id));
        }
    }
    for order in store.scan_json::<OrderRecord>(trees::ORDERS, "").unwrap() {
        let Some(cert_id) = &order.certificate else {
            continue;
        };
        if !certificates.iter().any(|c| &c.id == cert_id) {
            violations.push(format!("order {} names a missing certificate", order.id));
        }
        if order.status != OrderStatus::Valid {
            violations.push(format!(
                "order {} has a certificate but is {:?}",
                order.id, order.status
            ));
        }
        for authz_id in &order.authorizations {
            let authz: Option<AuthzRecord> = store.get_json(trees::AUTHZS, authz_id).unwrap();
            let valid = authz.is_some_and(|a| {
                a.status == AuthorizationStatus::Valid
                    && a.challenges
                        .iter()
                        .any(|c| c.status == ChallengeStatus::Valid)
            });
            if !valid {
                violations.push(format!(
                    "order {} has a certificate without its authorization {authz_id} valid",
                    order.id
                ));
            }
        }
    }
    (violations, certificates.len())
}

/// What a run of [`kill_under_load`] saw.
struct Run {
    failures: Vec<String>,
    /// Enrollments completed.
    enrolled: usize,
    /// Interrupted attempts retried.
    interrupted: usize,
    /// Certificates not listed and downloadable, replays accepted.
    violations: Vec<String>,
    /// Kills of the authz-server and of the acme-server.
    kills: [usize; 2],
    replays_tried: usize,
    replays_accepted: usize,
}

impl Run {
    /// Adds the invariants read from `store` to what the run saw, reports the run under
    /// `harness`, and asserts that every enrollment completed and no invariant broke.
    fn check(&self, store: &dyn Store, harness: &str) {
        let (store_violations, certificates) = store_invariants(store);
        let mut violations = self.violations.clone();
        violations.extend(store_violations);
        eprintln!(
            "{harness}: {} kills (authz-server {}, acme-server {}), {} enrollments completed, \
             {} interrupted attempts retried, {certificates} certificates stored, {} replays \
             refused of {}, {} invariant violations",
            self.kills[0] + self.kills[1],
            self.kills[0],
            self.kills[1],
            self.enrolled,
            self.interrupted,
            self.replays_tried - self.replays_accepted,
            self.replays_tried,
            violations.len(),
        );
        assert!(
            self.failures.is_empty(),
            "enrollments that never completed: {:?}",
            self.failures
        );
        assert!(violations.is_empty(), "{violations:#?}");
    }
}

/// Devices enroll while a random replica of one server or the other (taking turns) is
/// SIGKILLed and started again `kills` times, each kill between a redemption and its replay;
/// then every certificate an enrollment received is checked through the servers.
async fn kill_under_load(servers: &mut Servers, kills: usize) -> Run {
    let authz_probe = AuthzProbe::new(servers, WORKERS).await;
    let acme_probe = AcmeProbe::new(servers).await;
    let (up_tx, up) = watch::channel(true);
    let (stop_tx, stop) = watch::channel(false);
    let outcomes = Arc::new(Outcomes::default());
    let workers: Vec<_> = (0..WORKERS)
        .map(|user| {
            tokio::spawn(worker(
                servers.sdk_config(user),
                up.clone(),
                stop.clone(),
                outcomes.clone(),
            ))
        })
        .collect();
    let mut killed = [0usize; 2];
    let (mut replays_accepted, mut replays_tried) = (0, 0);
    let run = tokio::time::timeout(RUN_LIMIT, async {
        for k in 0..kills {
            tokio::time::sleep(jitter(150, 900)).await;
            let pick = usize::from(proto::random::bytes(1)[0]);
            if k % 2 == 0 {
                let redeemed = authz_probe.redeem().await;
                up_tx.send_replace(false);
                let replica = pick % servers.authz.len();
                servers.authz[replica].kill_and_restart().await;
                up_tx.send_replace(true);
                replays_accepted += authz_probe.replays_accepted(&redeemed).await;
                replays_tried += 2;
                killed[0] += 1;
            } else {
                let used = acme_probe.redeem().await;
                up_tx.send_replace(false);
                let replica = pick % servers.acme.len();
                servers.acme[replica].kill_and_restart().await;
                up_tx.send_replace(true);
                if acme_probe.post(&used).await != 400 {
                    replays_accepted += 1;
                }
                replays_tried += 1;
                killed[1] += 1;
            }
        }
        stop_tx.send_replace(true);
        let mut failures = Vec::new();
        for w in workers {
            if let Err(e) = w.await.unwrap() {
                failures.push(e);
            }
        }
        failures
    })
    .await;
    let failures = run.expect("the run overran its time limit");
    let enrolled = outcomes.enrolled.lock().unwrap().clone();
    let mut violations = listed_and_downloadable(servers, &enrolled).await;
    if replays_accepted > 0 {
        violations.push(format!(
            "{replays_accepted} replays accepted after a restart"
        ));
    }
    Run {
        failures,
        enrolled: enrolled.len(),
        interrupted: outcomes.interrupted.load(Ordering::SeqCst),
        violations,
        kills: killed,
        replays_tried,
        replays_accepted,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollments_survive_sigkill_of_either_server_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    // One more user for the authz probe. Retried enrollments register new devices.
    let authz_config = "[caps]\ndevices_per_user = 1000\n";
    let mut servers = Servers::start(dir.path(), WORKERS + 1, authz_config, None).await;
    let run = kill_under_load(&mut servers, KILLS).await;
    let Servers {
        mut authz,
        mut acme,
        acme_data,
        ..
    } = servers;
    let (authz_exit, acme_exit) = (
        authz.remove(0).terminate().await,
        acme.remove(0).terminate().await,
    );
    let store = server_kit::store::open_embedded(&acme_data.join("store")).unwrap();
    run.check(store.as_ref(), "crash harness");
    assert!(run.kills[0] + run.kills[1] >= 20);
    assert!(run.enrolled >= WORKERS, "{} enrollments", run.enrolled);
    assert!(
        authz_exit.success(),
        "authz-server on SIGTERM: {authz_exit}"
    );
    assert!(acme_exit.success(), "acme-server on SIGTERM: {acme_exit}");
}

/// SIGKILLs of replicas per run, at least.
const REPLICA_KILLS: usize = 12;

/// The harness with three replicas of each server on PostgreSQL behind balancers: a random
/// replica of either server is killed and started again while the others serve; afterwards
/// the same invariants, read from the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollments_survive_sigkill_of_random_replicas_on_postgres() {
    let pg = server_kit::testing::TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let authz_config = "[caps]\ndevices_per_user = 1000\n";
    let mut servers =
        Servers::start_replicated(dir.path(), WORKERS + 1, authz_config, &pg, 3).await;
    let run = kill_under_load(&mut servers, REPLICA_KILLS).await;
    let Servers { authz, acme, .. } = servers;
    let mut exits = Vec::new();
    for server in authz.into_iter().chain(acme) {
        exits.push(server.terminate().await);
    }
    let unused = tempfile::tempdir().unwrap();
    let store = pg
        .store_config(Some("e2ei_acme"))
        .open(unused.path(), "acme")
        .unwrap();
    run.check(store.as_ref(), "replica crash harness");
    assert!(run.enrolled >= WORKERS, "{} enrollments", run.enrolled);
    assert!(
        exits.iter().all(std::process::ExitStatus::success),
        "{exits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish_and_keeps_its_write() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (mut authz, url, ca) = start_authz(dir.path(), 1, "", None).await;
    let roots = vec![PathBuf::from(&ca)];
    let http = server_kit::tls::https_client(&roots, Duration::from_secs(20)).unwrap();
    let sdk = Authz::new(http, &url);
    let mut config = Config::new(
        "https://127.0.0.1:9/unused".to_owned(),
        url.clone(),
        PathBuf::from(&ca),
        Login::Password {
            username: "bench0".into(),
            password: SecretString::new(procs::password(0)),
        },
    );
    config.tls_roots = roots.clone();
    let bearer = sdk
        .login(&config, None, Step::Login)
        .await
        .unwrap()
        .access_token;

    // A device registration whose body is only half sent.
    let addr: SocketAddr = url.trim_start_matches("https://").parse().unwrap();
    let tls =
        tokio_rustls::TlsConnector::from(Arc::new(server_kit::tls::client_config(&roots).unwrap()));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = tls.connect(name, tcp).await.unwrap();
    let body = br#"{"label":"registered while stopping"}"#;
    let head = format!(
        "POST /clients HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {bearer}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    // The server answers 100 Continue once the handler reads the body: the request is in
    // flight (a connection whose request was not taken up yet is closed by a graceful stop).
    let mut interim = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut byte = [0u8; 1];
        while !interim.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            interim.push(byte[0]);
        }
    })
    .await
    .expect("100 Continue within 10 s");
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(&body[..10]).await.unwrap();
    stream.flush().await.unwrap();

    // SIGTERM; the listener closes (new connections refused) while the request waits.
    let pid = authz.server.child.id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "still accepting 10 s after SIGTERM");

    // The rest of the body: the request completes.
    stream.write_all(&body[10..]).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap_or_default();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let exit = tokio::time::timeout(Duration::from_secs(30), authz.server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit}");

    // Started again on the same data: the device is there.
    authz.restart().await;
    let listed: serde_json::Value = server_kit::tls::https_client(&roots, Duration::from_secs(20))
        .unwrap()
        .get(format!("{url}/clients"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["label"], "registered while stopping", "{listed}");
    assert!(authz.terminate().await.success());
}
