//! The real `acme-server` binary, stopped with SIGTERM between the challenges and finalize and
//! started again on the same data directory: the account, the `ready` order and its
//! authorizations are all there, finalize issues, and a nonce from before the restart is
//! refused after it. Also `acme-server ca init`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::authz::{spawn_server, stop};
use common::*;
use proto::acme::{Order, OrderStatus};
use proto::acme_jws::{KeyId, sign_request};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn spawn(config: &Path) -> (tokio::process::Child, String) {
    spawn_server(
        env!("CARGO_BIN_EXE_acme-server"),
        &["--config", config.to_str().unwrap(), "serve"],
        "acme-server directory ",
    )
    .await
}

#[tokio::test]
async fn a_ready_order_survives_a_restart_and_old_nonces_do_not() {
    let authz = Harness::start().await;
    let data = tempfile::tempdir().unwrap();
    let ca_init = std::process::Command::new(env!("CARGO_BIN_EXE_acme-server"))
        .args([
            "--data-dir",
            data.path().to_str().unwrap(),
            "ca",
            "init",
            "--name",
            "Test",
        ])
        .output()
        .unwrap();
    assert!(ca_init.status.success());
    assert!(data.path().join("ca/intermediate-key.pem").exists());

    let mut config = acme_config(&authz, data.path());
    config.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let toml = format!(
        r#"listen = "{listen}"
data_dir = "{data}"
dev = true
domains = ["{DOMAIN}"]
trust_anchors = ["{anchor}"]
[wire_dpop]
target = "{target}"
backend_jwks_url = "{jwks}"
[wire_oidc]
issuer = "{issuer}"
"#,
        listen = config.listen,
        data = data.path().display(),
        anchor = config.trust_anchors[0].display(),
        target = config.wire_dpop.target,
        jwks = config.wire_dpop.backend_jwks_url.as_deref().unwrap(),
        issuer = config.wire_oidc.issuer,
    );
    let config_path = data.path().join("acme.toml");
    std::fs::write(&config_path, toml).unwrap();

    let (child, directory_url) = spawn(&config_path).await;
    let tls_ca = data.path().join("tls/ca.pem");
    let env = Env {
        client: Acme::connect(&tls_ca, &directory_url).await,
        authz,
        acme: None,
        acme_dir: tempfile::tempdir().unwrap(),
    };
    let e = env.ready().await;
    let stale_nonce = env.client.fresh_nonce().await;
    stop(child).await;

    let (child, again) = spawn(&config_path).await;
    assert_eq!(again, directory_url);
    let client = Acme::connect(&tls_ca, &directory_url).await;
    let order: Order = client.get(&e.account, &e.order_url).await;
    assert_eq!(order.status, OrderStatus::Ready);

    let body = sign_request(
        &e.account.key,
        KeyId::Kid(&e.account.kid),
        &stale_nonce,
        &e.order_url,
        None,
    )
    .unwrap();
    assert_problem(client.send(&e.order_url, body).await, 400, "badNonce").await;

    let der = CsrSpec::for_device(&e.client_id).sign(&credential_key());
    let response = client
        .post_as(&e.account, &order.finalize, Some(&finalize_payload(&der)))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let order: Order = response.json().await.unwrap();
    assert_eq!(order.status, OrderStatus::Valid);
    stop(child).await;

    // The issued certificate is on disk too.
    let (child, _) = spawn(&config_path).await;
    let client = Acme::connect(&tls_ca, &directory_url).await;
    let response = client
        .post_as(&e.account, order.certificate.as_ref().unwrap(), None)
        .await;
    assert_eq!(response.status(), 200);
    let chain = response.text().await.unwrap();
    let intermediate = std::fs::read_to_string(data.path().join("ca/intermediate.pem")).unwrap();
    assert!(
        chain.ends_with(&intermediate),
        "issued under the `ca init` intermediate"
    );
    let (_, pem) = x509_parser::pem::parse_x509_pem(intermediate.as_bytes()).unwrap();
    assert_eq!(
        pem.parse_x509().unwrap().subject().to_string(),
        "CN=Test Intermediate CA"
    );
    stop(child).await;
}
