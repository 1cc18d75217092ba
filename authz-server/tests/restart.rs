//! The real `authz-server` binary, stopped with SIGTERM and started again on the same data
//! directory: users, devices and the signing key survive, and a backend nonce redeemed before
//! the restart is not accepted after it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;
use tokio::process::{Child, Command};

async fn spawn(data_dir: &std::path::Path) -> (Child, String) {
    let args = [
        "--data-dir",
        data_dir.to_str().unwrap(),
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--domain",
        DOMAIN,
    ];
    spawn_server(
        env!("CARGO_BIN_EXE_authz-server"),
        &args,
        "authz-server listening on ",
    )
    .await
}

/// A harness view over a server that runs as a subprocess.
fn harness_for(url: String, dir: &std::path::Path, password: String) -> Harness {
    let clock = std::sync::Arc::new(proto::clock::FixedClock::new(proto::clock::Clock::now(
        &proto::clock::SystemClock,
    )));
    Harness {
        server: None,
        client: http_client(&dir.join("tls/ca.pem")),
        base: url,
        password,
        clock,
        dir: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test]
async fn state_survives_a_restart_and_nonces_stay_spent() {
    let data = tempfile::tempdir().unwrap();
    // An operator adds a user with the CLI before the first start; the password comes on stdin.
    let mut add = Command::new(env!("CARGO_BIN_EXE_authz-server"))
        .args([
            "--data-dir",
            data.path().to_str().unwrap(),
            "user",
            "add",
            "--handle",
            "bob_wire",
            "--name",
            "Bob",
            "--domain",
            DOMAIN,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(add.stdin.as_mut().unwrap(), b"bobs password\n")
        .await
        .unwrap();
    drop(add.stdin.take());
    assert!(add.wait().await.unwrap().success());

    let (child, url) = spawn(data.path()).await;
    let password = std::fs::read_to_string(data.path().join("demo-password")).unwrap();
    let h = harness_for(url, data.path(), password.trim().to_owned());
    let jwks_before = h.get_json("/jwks").await;
    let token = h.bearer_login().await;
    let (device, client_id) = h.register_device(&token).await;
    let account = account_key();
    let spent = h.nonce(&token, &device).await;
    let unused = h.nonce(&token, &device).await;
    let proof = h
        .wire_proof_claims(&device, &client_id, &spent)
        .sign(&account)
        .unwrap();
    assert_eq!(h.access_token(&token, &device, &proof).await.status(), 200);
    let bob = h
        .authorize(&authorize_params(&Pkce::new()), "bob_wire", "bobs password")
        .await;
    assert_eq!(bob.status(), 303, "the CLI-added user can log in");
    drop(h);
    stop(child).await;

    let (child, url) = spawn(data.path()).await;
    let h = harness_for(url, data.path(), password.trim().to_owned());
    let jwks_after = h.get_json("/jwks").await;
    assert_eq!(jwks_before, jwks_after, "same signing key");
    let token = h.bearer_login().await;
    let devices: Value = h
        .client
        .get(h.url("/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(devices[0]["client_id"], client_id.as_str());
    let again = h
        .wire_proof_claims(&device, &client_id, &spent)
        .sign(&account)
        .unwrap();
    assert_wire_error(
        h.access_token(&token, &device, &again).await,
        400,
        "client-token-bad-nonce",
    )
    .await;
    let proof = h
        .wire_proof_claims(&device, &client_id, &unused)
        .sign(&account)
        .unwrap();
    assert_eq!(
        h.access_token(&token, &device, &proof).await.status(),
        200,
        "a nonce issued before the restart works once"
    );
    drop(h);
    stop(child).await;
}
