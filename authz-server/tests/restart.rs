//! The real `authz-server` binary, stopped with SIGTERM and started again on the same data
//! directory: users, devices and the signing key survive, and a backend nonce redeemed before
//! the restart is not accepted after it; a signing key made world-readable stops it from starting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;
use tokio::process::{Child, Command};

async fn spawn(data_dir: &std::path::Path) -> (Child, String) {
    spawn_dev_server(env!("CARGO_BIN_EXE_authz-server"), data_dir, "127.0.0.1:0").await
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
    let h = Harness::attach(url, data.path());
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
    let h = Harness::attach(url, data.path());
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

#[tokio::test]
async fn a_rotated_signing_key_keeps_its_tokens_valid() {
    let data = tempfile::tempdir().unwrap();
    // The same address across the restart: the issuer URL (`iss`) must not change.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (child, url) =
        spawn_dev_server(env!("CARGO_BIN_EXE_authz-server"), data.path(), &listen).await;
    let h = Harness::attach(url, data.path());
    let old_token = h.bearer_login().await;
    let old_jwks = h.get_json("/jwks").await;
    drop(h);
    stop(child).await;

    let out = Command::new(env!("CARGO_BIN_EXE_authz-server"))
        .args([
            "--data-dir",
            data.path().to_str().unwrap(),
            "keys",
            "rotate",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let new_kid = String::from_utf8(out.stdout).unwrap();
    let new_kid = new_kid
        .trim()
        .strip_prefix("new signing key ")
        .unwrap()
        .to_owned();

    let (child, url) =
        spawn_dev_server(env!("CARGO_BIN_EXE_authz-server"), data.path(), &listen).await;
    let h = Harness::attach(url, data.path());
    let jwks = h.get_json("/jwks").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids[0], new_kid, "new tokens are signed by the new key");
    assert_eq!(
        kids[1],
        old_jwks["keys"][0]["kid"].as_str().unwrap(),
        "the old key stays published"
    );
    let response = h
        .client
        .get(h.url("/userinfo"))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(
        status, 200,
        "a token of the old key is still accepted: {body}"
    );
    let new_token = h.bearer_login().await;
    let header: Value = serde_json::from_slice(
        &proto::b64::decode(new_token.split('.').next().unwrap(), "header").unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], new_kid.as_str());
    drop(h);
    stop(child).await;
}

#[tokio::test]
async fn the_binary_refuses_to_start_with_a_world_readable_signing_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (child, _) = spawn(dir.path()).await;
    stop(child).await;
    let key = dir.path().join("keys/signing-key.der");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "created owner-only");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_authz-server"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "serve", "--dev"])
        .args(["--listen", "127.0.0.1:0", "--domain", DOMAIN])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("signing-key.der is readable by group or others; chmod 600 it"),
        "{stderr}"
    );
}
