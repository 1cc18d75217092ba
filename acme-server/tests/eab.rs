//! External Account Binding: keys made with the operator CLI, newAccount refused without a
//! binding when one is required, a wrong MAC and a reused key refused, a correct binding
//! accepted — by our client and by lego.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{Acme, assert_problem};
use proto::acme_jws::KeyId;
use proto::clock::SystemClock;
use proto::jws::{Algorithm, SigningKey};
use serde_json::json;

fn eab_add(data: &std::path::Path) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_acme-server"))
        .args(["--data-dir", data.to_str().unwrap(), "eab", "add"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    (field("kid"), field("hmac key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_need_a_valid_unused_binding_when_required() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("acme");
    let (kid, mac) = eab_add(&data);
    let (kid2, mac2) = eab_add(&data);
    let mut config = acme_server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data,
        dev: true,
        external_account_required: true,
        ..acme_server::Config::default()
    };
    config.wire_dpop.backend_jwks_url = Some("https://127.0.0.1:9/jwks".into());
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    common::loopback_standard_orders(&mut config);
    config.validation.http_port = http_port;
    let server = acme_server::start(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let tls_ca = server.dev_tls_ca.clone().unwrap();
    let client = Acme::connect(&tls_ca, &server.directory_url).await;
    assert!(
        client
            .directory
            .meta
            .as_ref()
            .unwrap()
            .external_account_required
    );
    let url = client.directory.new_account.clone();
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let mac_bytes = |m: &str| proto::b64::decode(m, "mac").unwrap();

    let response = client.post(&url, &key, KeyId::Jwk, Some(&json!({}))).await;
    assert_problem(response, 400, "externalAccountRequired").await;

    let wrong = proto::eab::sign(&kid, b"not the key", &url, key.public_jwk());
    let response = client
        .post(
            &url,
            &key,
            KeyId::Jwk,
            Some(&json!({"externalAccountBinding": wrong})),
        )
        .await;
    assert_problem(response, 403, "unauthorized").await;

    let binding = proto::eab::sign(&kid, &mac_bytes(&mac), &url, key.public_jwk());
    let response = client
        .post(
            &url,
            &key,
            KeyId::Jwk,
            Some(&json!({"externalAccountBinding": binding})),
        )
        .await;
    assert_eq!(response.status(), 201);

    // The same key id cannot bind a second account.
    let other = SigningKey::generate(Algorithm::Es256).unwrap();
    let reuse = proto::eab::sign(&kid, &mac_bytes(&mac), &url, other.public_jwk());
    let response = client
        .post(
            &url,
            &other,
            KeyId::Jwk,
            Some(&json!({"externalAccountBinding": reuse})),
        )
        .await;
    assert_problem(response, 403, "unauthorized").await;

    // lego with the second key.
    let lego_dir = dir.path().join("lego");
    let out = tokio::process::Command::new("lego")
        .args([
            "--server",
            &server.directory_url,
            "--email",
            "ops@example.test",
            "--accept-tos",
            "--eab",
            "--kid",
            &kid2,
            "--hmac",
            &mac2,
            "--path",
            lego_dir.to_str().unwrap(),
            "--domains",
            "eab.example.test",
            "--http",
            "--http.port",
            &format!("127.0.0.1:{http_port}"),
            "run",
        ])
        .env("LEGO_CA_CERTIFICATES", &tls_ca)
        .output()
        .await
        .expect("lego must be installed (`cargo xtask test` installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");

    // After it, `eab list` shows both keys bound.
    server.shutdown().await.unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_acme-server"))
        .args([
            "--data-dir",
            dir.path().join("acme").to_str().unwrap(),
            "eab",
            "list",
        ])
        .output()
        .unwrap();
    let list = String::from_utf8(out.stdout).unwrap();
    assert_eq!(list.lines().count(), 2);
    assert!(!list.contains("unused"), "{list}");
    assert!(!list.contains(&mac), "the list never shows HMAC keys");
}

#[tokio::test]
async fn standard_orders_can_be_kept_to_accounts_with_a_binding() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("acme");
    let (kid, mac) = eab_add(&data);
    let mut config = acme_server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data,
        dev: true,
        ..acme_server::Config::default()
    };
    config.wire_dpop.backend_jwks_url = Some("https://127.0.0.1:9/jwks".into());
    config.domains = vec![common::DOMAIN.into()];
    common::loopback_standard_orders(&mut config);
    config.standard_orders.require_eab = true;
    let server = acme_server::start(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let client = Acme::connect(server.dev_tls_ca.as_ref().unwrap(), &server.directory_url).await;
    let new_order = client.directory.new_order.clone();
    let order = json!({"identifiers": [{"type": "dns", "value": "bound.example.test"}]});

    // An account without a binding may exist (EAB is not required for accounts here) and may
    // order identity certificates, but not dns/ip ones.
    let unbound = client.new_account().await;
    let response = client.post_as(&unbound, &new_order, Some(&order)).await;
    let problem = assert_problem(response, 403, "unauthorized").await;
    assert!(problem["detail"].as_str().unwrap().contains("require_eab"));
    let client_id = proto::wire_id::ClientId::parse(
        "wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com",
    )
    .unwrap();
    let identity = json!({"identifiers": common::identifiers(&client_id)});
    let response = client.post_as(&unbound, &new_order, Some(&identity)).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);

    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let url = client.directory.new_account.clone();
    let mac = proto::b64::decode(&mac, "mac").unwrap();
    let binding = proto::eab::sign(&kid, &mac, &url, key.public_jwk());
    let response = client
        .post(
            &url,
            &key,
            KeyId::Jwk,
            Some(&json!({"externalAccountBinding": binding, "termsOfServiceAgreed": true})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let bound = common::Account {
        key,
        kid: common::header(&response, "location"),
    };
    let response = client.post_as(&bound, &new_order, Some(&order)).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
}
