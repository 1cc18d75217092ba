//! Both servers on a real PostgreSQL 15 (started for the test): a device enrolls end to end
//! with every record in the database, a user the operator adds with the CLI while the servers
//! run enrolls at once, a sled deployment moves over with `store export`/`store import`, and
//! an outage of the database mid-load is answered with
//! 503 and `Retry-After` by both servers (never a 500, never a hang), after which the same
//! servers, never restarted, enroll again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use client_sdk::Enrollment;
use e2ei_stack::stack::{Options, Stack};
use proto::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};
use server_kit::testing::TestPostgres;

mod support;
use support::acme_requests::{directory, fresh_nonce, post_jose, signed_with_jwk};
use support::operator::{config_file, store_command};

/// How many rows of the acme-server's serial index hold `serial` (psql's answer).
fn serials_stored(pg: &TestPostgres, serial: &str) -> String {
    let serial = serial.to_lowercase();
    pg.psql(&format!(
        "SELECT count(*) FROM e2ei_acme.records WHERE tree = 'serials' AND \
         key = convert_to('{serial}', 'UTF8')"
    ))
}

async fn start(pg: &TestPostgres, dir: &std::path::Path) -> Stack {
    Stack::start_with(
        dir,
        Options {
            store: pg.store_config(None),
            ..Options::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrolls_with_both_servers_on_postgres() {
    let pg = TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let stack = start(&pg, dir.path()).await;
    let enrolled = Enrollment::new(stack.demo_config()).run().await.unwrap();
    assert_eq!(enrolled.identity.handle().handle(), "alice_wire");

    // The records are in the database, none in an embedded store.
    assert_eq!(serials_stored(&pg, &enrolled.certificate.serial), "1");
    assert_eq!(
        pg.psql("SELECT count(*) FROM e2ei_authz.records WHERE tree = 'devices'"),
        "1"
    );
    assert!(!dir.path().join("acme/store").exists());
    assert!(!dir.path().join("authz/store").exists());

    // The operator adds a user with the CLI while the servers run; the user enrolls at once.
    support::operator::add_user(
        &config_file(dir.path(), "authz", Some(&pg)),
        "bob_wire",
        "correct horse battery staple",
    );
    let bob = stack.sdk_config(
        "bob_wire",
        proto::secret::SecretString::new("correct horse battery staple"),
    );
    let enrolled = Enrollment::new(bob).run().await.unwrap();
    assert_eq!(enrolled.identity.handle().handle(), "bob_wire");
    stack.shutdown().await.unwrap();
}

/// POSTs `newAccount` with a fresh nonce: redeeming a shared nonce needs the database.
async fn new_account(http: &reqwest::Client, directory: &Value) -> reqwest::Response {
    let nonce = fresh_nonce(http, directory["newNonce"].as_str().unwrap()).await;
    let url = directory["newAccount"].as_str().unwrap();
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let body = signed_with_jwk(&key, &nonce, url, &json!({"termsOfServiceAgreed": true}));
    post_jose(http, url, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_with_retry_after_and_service_resumes_without_a_restart() {
    let pg = TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let stack = start(&pg, dir.path()).await;
    Enrollment::new(stack.demo_config()).run().await.unwrap();
    let http = server_kit::tls::https_client(&stack.tls_roots(), Duration::from_secs(30)).unwrap();
    let directory = directory(&http, &stack.acme.directory_url).await;

    pg.stop();
    let started = Instant::now();
    // Fifty simultaneous requests of each server that need the database.
    let acme: Vec<_> = (0..50)
        .map(|_| {
            let (http, directory) = (http.clone(), directory.clone());
            tokio::spawn(async move { new_account(&http, &directory).await })
        })
        .collect();
    let token_url = format!("{}/token", stack.authz.base_url);
    let authz: Vec<_> = (0..50)
        .map(|_| {
            let (http, url) = (http.clone(), token_url.clone());
            tokio::spawn(async move {
                http.post(url)
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", "no-such-code"),
                        ("client_id", authz_server::server::DEMO_CLIENT_ID),
                        ("redirect_uri", authz_server::server::DEMO_REDIRECT_URI),
                        ("code_verifier", &"v".repeat(43)),
                    ])
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for response in acme {
        let response = response.await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:ietf:params:acme:error:serverInternal");
    }
    for response in authz {
        let response = response.await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "temporarily_unavailable");
    }
    // Refused promptly: the database's port is closed, nothing waits for a timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for base in [&stack.authz.base_url, &stack.acme.base_url] {
        let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 503, "{base}");
    }

    pg.restart();
    // The same servers come back by themselves: ready within a few seconds, then an
    // enrollment succeeds.
    let deadline = Instant::now() + Duration::from_secs(15);
    for base in [&stack.authz.base_url, &stack.acme.base_url] {
        loop {
            let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
            if ready.status() == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{base} not ready after the restart"
            );
            tokio::task::yield_now().await;
        }
    }
    let enrolled = Enrollment::new(stack.demo_config()).run().await.unwrap();
    assert_eq!(enrolled.identity.handle().handle(), "alice_wire");
    assert_eq!(
        pg.psql("SELECT count(*) FROM e2ei_authz.records WHERE tree = 'devices'"),
        "2"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_deployment_moves_to_postgres_with_store_export_and_import() {
    let pg = TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    let enrolled = Enrollment::new(stack.demo_config()).run().await.unwrap();
    stack.shutdown().await.unwrap();

    for server in ["authz", "acme"] {
        let program = format!("{server}-server");
        let file = dir.path().join(format!("{server}.jsonl"));
        let file = file.display().to_string();
        let exported = store_command(
            &program,
            &config_file(dir.path(), server, None),
            &["export", "--to", &file],
        );
        let imported = store_command(
            &program,
            &config_file(dir.path(), server, Some(&pg)),
            &["import", "--from", &file],
        );
        let count = exported.split_whitespace().nth(1).unwrap();
        assert!(
            imported.starts_with(&format!("imported {count} records")),
            "{imported}"
        );
    }
    // The embedded stores are set aside; the servers start on PostgreSQL with the same data
    // directories (keys, CA, TLS) and know the device, its certificate and its account.
    std::fs::rename(
        dir.path().join("acme/store"),
        dir.path().join("acme-store.old"),
    )
    .unwrap();
    std::fs::rename(
        dir.path().join("authz/store"),
        dir.path().join("authz-store.old"),
    )
    .unwrap();
    let stack = start(&pg, dir.path()).await;
    assert_eq!(serials_stored(&pg, &enrolled.certificate.serial), "1");
    // The account is there: its key finds it (RFC 8555 §7.3.1 onlyReturnExisting).
    let http = server_kit::tls::https_client(&stack.tls_roots(), Duration::from_secs(30)).unwrap();
    let directory = directory(&http, &stack.acme.directory_url).await;
    let nonce = fresh_nonce(&http, directory["newNonce"].as_str().unwrap()).await;
    let key = SigningKey::from_pkcs8_der(enrolled.algorithm.jose(), enrolled.account_key.expose())
        .unwrap();
    let url = directory["newAccount"].as_str().unwrap();
    let body = signed_with_jwk(&key, &nonce, url, &json!({"onlyReturnExisting": true}));
    let found = post_jose(&http, url, body).await;
    assert_eq!(found.status(), 200);
    // The same account (the servers listen on new ports now).
    let account_path = url::Url::parse(&enrolled.account_url)
        .unwrap()
        .path()
        .to_owned();
    let location = found.headers()["location"].to_str().unwrap();
    assert!(
        location.ends_with(&account_path),
        "{location} vs {account_path}"
    );
    // The device enrolls again on the moved deployment, with its account and its device
    // registration carried over (the second device of the same user).
    Enrollment::new(stack.demo_config()).run().await.unwrap();
    assert_eq!(
        pg.psql("SELECT count(*) FROM e2ei_authz.records WHERE tree = 'devices'"),
        "2"
    );
    stack.shutdown().await.unwrap();
}
