//! Independent OAuth clients against the authz-server over HTTPS on 127.0.0.1: the npm packages
//! oauth4webapi (authorization code + PKCE + DPoP with the nonce retry, /userinfo, refresh,
//! client credentials, device grant polling at the server's interval with its ID token) and
//! openid-client (its defaults: `openid email profile`, an Ed25519 DPoP key signed as
//! `Ed25519`, the third-party app through consent, an error response with `iss`), and the PyPI
//! packages requests_oauth2client (client credentials with DPoP, introspection) and Authlib
//! (`openid email profile`, `private_key_jwt` assertions valid for an hour). `cargo xtask test`
//! installs them (`npm ci` in tests/interop, a venv from tests/interop/requirements.txt);
//! missing, the tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

/// Asserts the npm package `name` is installed in tests/interop.
fn assert_npm_package(name: &str) {
    let interop = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
    assert!(
        std::path::Path::new(interop)
            .join("node_modules")
            .join(name)
            .exists(),
        "run `npm ci` in {interop} (`cargo xtask test` does)"
    );
}

/// The venv python the Python interop clients run with: `INTEROP_PYTHON`, which `cargo xtask
/// test` exports, or the venv it makes.
fn interop_python() -> String {
    std::env::var("INTEROP_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/interop-venv/bin/python"
        )
        .into()
    })
}

/// Asserts each step line is in an interop client's output.
fn assert_steps(stdout: &str, steps: &[&str]) {
    for step in steps {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth4webapi_runs_every_grant_with_dpop_and_server_nonces() {
    let h = Harness::start_with(|c| c.require_dpop_nonce = true).await;
    assert_npm_package("oauth4webapi");
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
    assert_steps(
        &stdout,
        &[
            "discovery ok",
            "use_dpop_nonce, retrying",
            "authorization code ok dpop id_token true",
            "userinfo ok alice_wire@wire.com",
            "refresh ok dpop",
            "client credentials ok dpop",
            "device authorization_pending, approved",
            "device grant ok dpop id_token true",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_signs_in_with_its_defaults_and_an_ed25519_dpop_key() {
    // A user without a team whose operator recorded an (unverified) email address.
    let seed = |store: &dyn authz_server::store::Store| {
        let password = proto::secret::SecretString::new("erin password");
        authz_server::users::add_with_email(
            store,
            &authz_server::users::NewUser {
                handle: "erin",
                name: "Erin",
                team: None,
                domain: DOMAIN,
                password: &password,
            },
            Some(authz_server::users::Email::new("erin@example.com", false).unwrap()),
        )
        .unwrap();
    };
    let h = Harness::start_seeded(|c| c.require_dpop_nonce = true, seed).await;
    assert_npm_package("openid-client");
    let stdout = run_interop(
        "node",
        "openid_client.mjs",
        &[
            ("ISSUER", h.base.clone()),
            ("LOGIN_HANDLE", "erin".into()),
            ("LOGIN_PASSWORD", "erin password".into()),
            ("LOGIN_EMAIL", "erin@example.com".into()),
            (
                "NODE_EXTRA_CA_CERTS",
                h.dir.path().join("tls/ca.pem").display().to_string(),
            ),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert_steps(
        &stdout,
        &[
            "discovery ok",
            "authorization code ok dpop email erin@example.com",
            "userinfo ok erin@wire.com",
            "refresh ok dpop",
            // The library's name for Ed25519 (RFC 9864), and only that.
            "dpop alg Ed25519\n",
            "consent page shown",
            "third-party authorization code ok bearer refresh_token false",
            "error response ok invalid_scope",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_oauth2client_gets_a_dpop_bound_client_credentials_token() {
    let h = Harness::start_with(|c| c.require_dpop_nonce = true).await;
    let python = interop_python();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_uses_its_default_scope_and_hour_long_client_assertions() {
    let h = Harness::start().await;
    let stdout = run_interop(
        &interop_python(),
        "authlib_client.py",
        &[
            ("ISSUER", h.base.clone()),
            ("PASSWORD", h.password.clone()),
            (
                "JWT_SERVICE_KEY",
                h.dir
                    .path()
                    .join("demo-jwt-service-key.der")
                    .display()
                    .to_string(),
            ),
            (
                "REQUESTS_CA_BUNDLE",
                h.dir.path().join("tls/ca.pem").display().to_string(),
            ),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert_steps(
        &stdout,
        &[
            "discovery ok",
            "authorization code ok Bearer scope openid email profile",
            "userinfo ok alice_wire@wire.com",
            // Authlib's default lifetime, accepted.
            "client assertion signed, lifetime 3600",
            "client credentials ok private_key_jwt",
        ],
    );
}
