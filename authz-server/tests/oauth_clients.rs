//! Independent OAuth clients against the authz-server over HTTPS on 127.0.0.1: the npm package
//! oauth4webapi (authorization code + PKCE + DPoP with the nonce retry, /userinfo, refresh,
//! client credentials, device grant polling at the server's interval), and the PyPI package
//! requests_oauth2client (client credentials with DPoP, introspection). `cargo xtask test`
//! installs both (`npm ci` in tests/interop, a venv from tests/interop/requirements.txt); missing,
//! the test fails.

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
        "run `npm ci` in {interop} (`cargo xtask test` does)"
    );
    let secret = std::fs::read_to_string(h.dir.path().join("demo-service-secret")).unwrap();
    let stdout = run_interop(
        "node",
        "oauth4webapi.mjs",
        &[
            ("ISSUER", h.base.clone()),
            ("PASSWORD", h.password.clone()),
            ("SERVICE_SECRET", secret),
            (
                "NODE_EXTRA_CA_CERTS",
                h.dir.path().join("tls/ca.pem").display().to_string(),
            ),
        ],
        Duration::from_secs(60),
    )
    .await;
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
    // `cargo xtask test` makes this venv and exports its python as INTEROP_PYTHON.
    let python = std::env::var("INTEROP_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/interop-venv/bin/python"
        )
        .into()
    });
    let secret = std::fs::read_to_string(h.dir.path().join("demo-service-secret")).unwrap();
    let stdout = run_interop(
        &python,
        "requests_oauth2client_cc.py",
        &[
            ("ISSUER", h.base.clone()),
            ("SERVICE_SECRET", secret),
            (
                "REQUESTS_CA_BUNDLE",
                h.dir.path().join("tls/ca.pem").display().to_string(),
            ),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert!(stdout.contains("client credentials ok DPoP"), "{stdout}");
    assert!(stdout.contains("introspection ok DPoP"), "{stdout}");
}
