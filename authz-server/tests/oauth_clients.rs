//! Independent OAuth clients against the authz-server over HTTPS on 127.0.0.1: the npm package
//! oauth4webapi (authorization code + PKCE + DPoP with the nonce retry, /userinfo, refresh,
//! client credentials, device grant polling at the server's interval), and the PyPI package
//! requests_oauth2client (client credentials with DPoP, introspection). `.ci/run` installs it (`npm ci` in tests/interop); missing, the test
//! fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth4webapi_runs_every_grant_with_dpop_and_server_nonces() {
    let h = Harness::start_with(|c| c.require_dpop_nonce = true).await;
    let interop = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
    assert!(
        std::path::Path::new(interop)
            .join("node_modules/oauth4webapi")
            .exists(),
        "run `npm ci` in {interop} (.ci/run does)"
    );
    let secret = std::fs::read_to_string(h.dir.path().join("demo-service-secret")).unwrap();
    let child = tokio::process::Command::new("node")
        .arg("oauth4webapi.mjs")
        .current_dir(interop)
        .env("ISSUER", &h.base)
        .env("PASSWORD", &h.password)
        .env("SERVICE_SECRET", secret)
        .env("NODE_EXTRA_CA_CERTS", h.dir.path().join("tls/ca.pem"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("oauth4webapi finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "discovery ok",
        "use_dpop_nonce, retrying",
        "authorization code ok dpop id_token true",
        "userinfo ok alice_wire@wire.com",
        "refresh ok dpop",
        "client credentials ok dpop",
        "device authorization_pending, approved",
        "device grant ok dpop",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_oauth2client_gets_a_dpop_bound_client_credentials_token() {
    let h = Harness::start_with(|c| c.require_dpop_nonce = true).await;
    let interop = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
    // .ci/run makes this venv and exports its python as INTEROP_PYTHON.
    let python = std::env::var("INTEROP_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/interop-venv/bin/python"
        )
        .into()
    });
    let secret = std::fs::read_to_string(h.dir.path().join("demo-service-secret")).unwrap();
    let child = tokio::process::Command::new(&python)
        .arg("requests_oauth2client_cc.py")
        .current_dir(interop)
        .env("ISSUER", &h.base)
        .env("SERVICE_SECRET", secret)
        .env("REQUESTS_CA_BUNDLE", h.dir.path().join("tls/ca.pem"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("requests_oauth2client finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("client credentials ok DPoP"), "{stdout}");
    assert!(stdout.contains("introspection ok DPoP"), "{stdout}");
}
