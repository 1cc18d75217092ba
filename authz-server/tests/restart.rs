//! The real `authz-server` binary, stopped with SIGTERM and started again on the same data
//! directory: users, devices and the signing key survive, and a backend nonce redeemed before
//! the restart is not accepted after it; a signing key made world-readable stops it from starting;
//! a key rotated while it is stopped or while it runs is published before it signs.

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
async fn a_key_rotated_while_the_server_is_stopped_is_published_at_start_and_old_tokens_stay_valid()
{
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
    let old_kid = h.get_json("/jwks").await["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(h);
    stop(child).await;

    let new_kid = rotate_keys(data.path(), &old_kid).await;

    let (child, url) =
        spawn_dev_server(env!("CARGO_BIN_EXE_authz-server"), data.path(), &listen).await;
    let h = Harness::attach(url, data.path());
    let kids = published_kids(&h).await;
    assert!(
        kids.contains(&new_kid) && kids.contains(&old_kid),
        "both keys published: {kids:?}"
    );
    assert_accepted(&h, &old_token).await;
    // The new key signs only once its time has come (a minute after the rotation).
    assert_eq!(token_kid(&h.bearer_login().await), old_kid);
    drop(h);
    stop(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_while_the_server_runs_is_published_at_its_next_read_and_signs_later() {
    // The embedded store whatever the test pass: the operator command opens it beside the
    // running server (on PostgreSQL, e2ei-stack's replica test covers the same).
    let h = Harness::start_with(|config| config.store = Default::default()).await;
    let old_token = h.bearer_login().await;
    let old_kid = published_kids(&h).await.remove(0);

    let new_kid = rotate_keys(h.dir.path(), &old_kid).await;

    // Published within the reload interval, while the old key still signs.
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(4 * authz_server::keys::RELOAD_SECS);
    loop {
        let kids = published_kids(&h).await;
        if kids.contains(&new_kid) {
            assert!(kids.contains(&old_kid), "{kids:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the running server never published {new_kid}: {kids:?}"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(token_kid(&h.bearer_login().await), old_kid);

    // Once its time has come the new key signs, and a token of the old one is still accepted.
    h.clock.set(
        proto::clock::Clock::now(&proto::clock::SystemClock)
            + authz_server::keys::PUBLISH_AHEAD_SECS
            + 1,
    );
    assert_eq!(token_kid(&h.bearer_login().await), new_kid);
    assert_accepted(&h, &old_token).await;
}

/// Runs `keys rotate` on `data` and returns the new key's `kid` from what it reports (`new
/// signing key KID: published now, signing from …`), another than `old`.
async fn rotate_keys(data: &std::path::Path, old: &str) -> String {
    let (rotated, said, err) = operator_command(
        env!("CARGO_BIN_EXE_authz-server"),
        data,
        &["keys", "rotate"],
        None,
    )
    .await;
    assert!(rotated, "{err}");
    let new = said
        .trim()
        .strip_prefix("new signing key ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("unexpected output: {said}"))
        .to_owned();
    assert_ne!(new, old);
    new
}

/// Asserts that `/userinfo` accepts `token`.
async fn assert_accepted(h: &Harness, token: &str) {
    let response = h
        .client
        .get(h.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "the token is refused: {body}");
}

async fn published_kids(h: &Harness) -> Vec<String> {
    h.get_json("/jwks").await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn token_kid(token: &str) -> String {
    let header: Value = serde_json::from_slice(
        &proto::b64::decode(token.split('.').next().unwrap(), "header").unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
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
