//! Three replicas of each server on one PostgreSQL database, behind a balancer that sends every
//! request to the next replica in turn (so an enrollment's consecutive requests land on
//! different replicas): enrollments complete, a nonce one replica issued is redeemed at another
//! once and refused at the third. The replicas share their key files as replicas on separate
//! machines would share them through configuration (see docs/operations.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use client_sdk::Enrollment;
use e2ei_stack::balancer::Balancer;
use e2ei_stack::stack::{Options, Stack};
use proto::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};
use server_kit::testing::TestPostgres;

mod support;
use support::acme_requests::{directory, fresh_nonce, post_jose, signed_with_jwk};

const REPLICAS: usize = 3;

struct Deployment {
    _pg: TestPostgres,
    _dir: tempfile::TempDir,
    replicas: Vec<Stack>,
    authz: Arc<Balancer>,
    acme: Arc<Balancer>,
    _running: Vec<e2ei_stack::balancer::Running>,
}

impl Deployment {
    async fn start() -> Self {
        Self::start_with(None, Arc::new(proto::clock::SystemClock)).await
    }

    async fn start_with(
        acme_rate_limits: Option<acme_server::config::RateLimits>,
        clock: Arc<dyn proto::clock::Clock>,
    ) -> Self {
        let pg = TestPostgres::start();
        let dir = tempfile::tempdir().unwrap();
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let (authz_listener, acme_listener) = (
            server_kit::serve::bind(any).unwrap(),
            server_kit::serve::bind(any).unwrap(),
        );
        let public = |l: &std::net::TcpListener| format!("https://{}", l.local_addr().unwrap());
        let (authz_url, acme_url) = (public(&authz_listener), public(&acme_listener));
        let mut replicas = Vec::new();
        for _ in 0..REPLICAS {
            replicas.push(
                Stack::start_with(
                    dir.path(),
                    Options {
                        store: pg.store_config(None),
                        authz_public_url: Some(authz_url.clone()),
                        acme_public_url: Some(acme_url.clone()),
                        acme_rate_limits: acme_rate_limits.clone(),
                        clock: clock.clone(),
                        ..Options::default()
                    },
                )
                .await
                .unwrap(),
            );
        }
        let mut running = Vec::new();
        for (listener, server, backends) in [
            (
                authz_listener,
                "authz",
                replicas.iter().map(|r| r.authz.addr).collect::<Vec<_>>(),
            ),
            (
                acme_listener,
                "acme",
                replicas.iter().map(|r| r.acme.addr).collect(),
            ),
        ] {
            running.push(
                e2ei_stack::balancer::start(
                    listener,
                    &dir.path().join(server),
                    &backends,
                    &replicas[0].tls_roots(),
                )
                .unwrap(),
            );
        }
        let (authz, acme) = (running[0].balancer.clone(), running[1].balancer.clone());
        Self {
            _pg: pg,
            _dir: dir,
            replicas,
            authz,
            acme,
            _running: running,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollments_complete_with_each_request_on_the_next_replica() {
    let deployment = Deployment::start().await;
    let config = deployment.replicas[0].demo_config();
    // The SDK is given the balancers' URLs (the replicas' public URLs).
    assert!(
        config
            .acme_directory
            .contains(&deployment.replicas[1].acme.base_url)
    );
    let enrollments: Vec<_> = (0..4)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { Enrollment::new(config).run().await })
        })
        .collect();
    let mut serials = Vec::new();
    for enrollment in enrollments {
        let enrolled = enrollment.await.unwrap().unwrap();
        assert_eq!(enrolled.identity.handle().handle(), "alice_wire");
        serials.push(enrolled.certificate.serial);
    }
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 4);
    for balancer in [&deployment.authz, &deployment.acme] {
        let served = balancer.served();
        assert!(served.iter().all(|n| *n >= 10), "{served:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_from_one_replica_is_redeemed_at_another_once_and_refused_at_the_third() {
    let deployment = Deployment::start().await;
    let http =
        server_kit::tls::https_client(&deployment.replicas[0].tls_roots(), Duration::from_secs(30))
            .unwrap();
    let direct = |replica: usize, url: &str| {
        // The public URL's path, sent to one replica's own address.
        let path = url::Url::parse(url).unwrap().path().to_owned();
        format!("{}{path}", deployment.acme.backends[replica])
    };
    let directory = directory(&http, &deployment.replicas[0].acme.directory_url).await;
    let new_account = directory["newAccount"].as_str().unwrap();
    let nonce = fresh_nonce(&http, &direct(0, directory["newNonce"].as_str().unwrap())).await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let body = signed_with_jwk(
        &key,
        &nonce,
        new_account,
        &json!({"termsOfServiceAgreed": true}),
    );
    let post = |replica: usize| {
        let (http, to, body) = (&http, direct(replica, new_account), body.clone());
        async move { post_jose(http, &to, body).await }
    };
    let created = post(1).await;
    assert_eq!(created.status(), 201);
    let replayed = post(2).await;
    assert_eq!(replayed.status(), 400);
    let problem: Value = replayed.json().await.unwrap();
    assert_eq!(problem["type"], "urn:ietf:params:acme:error:badNonce");
    let replayed = post(0).await;
    assert_eq!(replayed.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_counts_the_requests_of_every_replica() {
    let burst = 10;
    let deployment = Deployment::start_with(
        Some(acme_server::config::RateLimits {
            new_accounts_per_ip: server_kit::rate_limit::Rate::new(1, burst),
            ..acme_server::config::RateLimits::default()
        }),
        Arc::new(proto::clock::SystemClock),
    )
    .await;
    let http =
        server_kit::tls::https_client(&deployment.replicas[0].tls_roots(), Duration::from_secs(60))
            .unwrap();
    let directory = directory(&http, &deployment.replicas[0].acme.directory_url).await;
    let new_account = directory["newAccount"].as_str().unwrap().to_owned();
    let mut nonces = Vec::new();
    for _ in 0..100 {
        nonces.push(fresh_nonce(&http, directory["newNonce"].as_str().unwrap()).await);
    }
    // A hundred simultaneous account creations from one address, each request going to the
    // next replica.
    let creations: Vec<_> = nonces
        .into_iter()
        .map(|nonce| {
            let (http, url) = (http.clone(), new_account.clone());
            tokio::spawn(async move {
                let key = SigningKey::generate(Algorithm::Es256).unwrap();
                let body =
                    signed_with_jwk(&key, &nonce, &url, &json!({"termsOfServiceAgreed": true}));
                post_jose(&http, &url, body).await
            })
        })
        .collect();
    let (mut created, mut limited) = (0, 0);
    for creation in creations {
        let response = creation.await.unwrap();
        match response.status().as_u16() {
            201 => created += 1,
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["type"], "urn:ietf:params:acme:error:rateLimited");
                limited += 1;
            }
            other => panic!("{other}: {}", response.text().await.unwrap()),
        }
    }
    assert_eq!(created, burst, "the burst summed across the replicas");
    assert_eq!(limited, 100 - burst);
    let served = deployment.acme.served();
    assert!(served.iter().all(|n| *n >= 30), "{served:?}");
}

/// An authorization code of the demo user from `replica`, with its PKCE pair.
async fn code_from(
    http: &reqwest::Client,
    deployment: &Deployment,
    replica: usize,
) -> (String, proto::pkce::Pkce) {
    use authz_server::server::{DEMO_CLIENT_ID, DEMO_REDIRECT_URI};
    let pkce = proto::pkce::Pkce::new();
    let login = http
        .post(format!("{}/authorize", deployment.authz.backends[replica]))
        .form(&[
            ("response_type", "code"),
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("scope", "openid profile"),
            ("state", "s"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("username", authz_server::server::DEMO_HANDLE),
            ("password", deployment.replicas[0].demo_password.expose()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let location = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(name, _)| name == "code")
        .unwrap()
        .1
        .into_owned();
    (code, pkce)
}

/// The `kid` of an access token the demo user gets from `replica`.
async fn token_kid(http: &reqwest::Client, deployment: &Deployment, replica: usize) -> String {
    use authz_server::server::{DEMO_CLIENT_ID, DEMO_REDIRECT_URI};
    let (code, pkce) = code_from(http, deployment, replica).await;
    let response = http
        .post(format!("{}/token", deployment.authz.backends[replica]))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", DEMO_REDIRECT_URI),
            ("client_id", DEMO_CLIENT_ID),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&proto::b64::decode(header, "header").unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The `kid`s of a replica's JWKS.
async fn published(http: &reqwest::Client, deployment: &Deployment, replica: usize) -> Vec<String> {
    let jwks: Value = http
        .get(format!("{}/jwks", deployment.authz.backends[replica]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_is_published_by_every_replica_before_any_signs_with_it() {
    use proto::clock::{Clock, FixedClock, SystemClock};

    let clock = Arc::new(FixedClock::new(SystemClock.now()));
    let deployment = Deployment::start_with(None, clock.clone()).await;
    let http =
        server_kit::tls::https_client(&deployment.replicas[0].tls_roots(), Duration::from_secs(60))
            .unwrap();
    let old = token_kid(&http, &deployment, 0).await;
    for replica in 0..REPLICAS {
        assert_eq!(
            published(&http, &deployment, replica).await,
            std::slice::from_ref(&old)
        );
    }

    // The operator rotates with the CLI while the replicas run.
    let config = deployment._dir.path().join("authz-pg.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[store]\nurl = {:?}\npassword_file = {:?}\n",
            deployment._dir.path().join("authz").display().to_string(),
            deployment._pg.url(),
            deployment._pg.password_file().display().to_string()
        ),
    )
    .unwrap();
    let rotated =
        std::process::Command::new(e2ei_stack::bench::procs::binary("authz-server").unwrap())
            .arg("--config")
            .arg(&config)
            .args(["keys", "rotate"])
            .output()
            .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let said = String::from_utf8_lossy(&rotated.stdout).into_owned();
    let new = said
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    assert_ne!(new, old);

    // Every replica publishes it within its reload interval, and still signs with the old key.
    let deadline =
        std::time::Instant::now() + Duration::from_secs(4 * authz_server::keys::RELOAD_SECS);
    for replica in 0..REPLICAS {
        loop {
            let kids = published(&http, &deployment, replica).await;
            if kids.contains(&new) {
                assert!(kids.contains(&old), "{kids:?}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "replica {replica} never published {new}"
            );
            tokio::task::yield_now().await;
        }
        assert_eq!(token_kid(&http, &deployment, replica).await, old);
    }
    // Once its time has come, every replica signs with the new key; the old one stays
    // published for the tokens it signed.
    clock.set(SystemClock.now() + authz_server::keys::PUBLISH_AHEAD_SECS + 1);
    for replica in 0..REPLICAS {
        assert_eq!(token_kid(&http, &deployment, replica).await, new);
        let kids = published(&http, &deployment, replica).await;
        assert!(kids.contains(&old) && kids.contains(&new), "{kids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_authorization_code_raced_at_three_replicas_issues_tokens_once() {
    use authz_server::server::{DEMO_CLIENT_ID, DEMO_REDIRECT_URI};

    let deployment = Deployment::start().await;
    let http =
        server_kit::tls::https_client(&deployment.replicas[0].tls_roots(), Duration::from_secs(60))
            .unwrap();
    for round in 0..3 {
        // A code from one replica (the login form posted to it directly).
        let (code, pkce) = code_from(&http, &deployment, round).await;
        // Thirty simultaneous redemptions, ten at each replica.
        let redemptions: Vec<_> = (0..30)
            .map(|i| {
                let to = format!("{}/token", deployment.authz.backends[i % REPLICAS]);
                let form = [
                    ("grant_type", "authorization_code".to_owned()),
                    ("code", code.clone()),
                    ("redirect_uri", DEMO_REDIRECT_URI.to_owned()),
                    ("client_id", DEMO_CLIENT_ID.to_owned()),
                    ("code_verifier", pkce.verifier.clone()),
                ];
                let http = http.clone();
                tokio::spawn(async move { http.post(to).form(&form).send().await.unwrap() })
            })
            .collect();
        let mut issued = 0;
        for redemption in redemptions {
            let response = redemption.await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            match status {
                200 => {
                    assert!(body["access_token"].is_string());
                    issued += 1;
                }
                400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
                other => panic!("{other}: {body}"),
            }
        }
        assert_eq!(issued, 1, "round {round}");
    }
}
