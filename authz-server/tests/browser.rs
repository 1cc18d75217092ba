//! A real browser on the login, consent, device verification and account pages, in one
//! session that it signs out of at the end: Debian's chromium
//! driven by playwright-core (installed by `cargo xtask test`); screenshots are kept in
//! `target/playwright/` as test artifacts. The device then gets its tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::upstream;
use common::*;
use serde_json::Value;

/// The base64 SHA-256 of the server certificate's key: chromium trusts exactly this key (its
/// SPKI pin), not the whole dev CA.
fn spki_pin(h: &Harness) -> String {
    let server_pem = std::fs::read(h.dir.path().join("tls/server.pem")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&server_pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    use base64::Engine;
    use sha2::{Digest, Sha256};
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(cert.public_key().raw))
}

/// The client's redirect target, a loopback listener answering every request with 200; its port.
async fn client_callback() -> u16 {
    let callback = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = callback.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = callback.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\nconnection: close\r\n\r\nclient callback")
                .await;
        }
    });
    port
}

/// Each screenshot of `names` is a PNG in `shots`.
fn assert_screenshots(shots: &str, names: &[&str]) {
    for shot in names {
        let png = std::fs::read(format!("{shots}/{shot}.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{shot}.png is a PNG");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_consents_and_approves_a_device() {
    let h = Harness::start().await;
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/playwright");
    std::fs::create_dir_all(shots).unwrap();
    let codes: Value = h
        .client
        .post(h.url("/device_authorization"))
        .form(&[("client_id", "wireapp")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pin = spki_pin(&h);
    let callback_port = client_callback().await;
    let ca = h.dir.path().join("tls/ca.pem").display().to_string();
    let device_url = codes["verification_uri_complete"]
        .as_str()
        .unwrap()
        .to_owned();
    let stdout = run_interop(
        "node",
        "browser.mjs",
        &[
            ("ISSUER", h.base.clone()),
            ("PASSWORD", h.password.clone()),
            ("SCREENSHOTS", shots.to_owned()),
            ("DEVICE_URL", device_url),
            ("NODE_EXTRA_CA_CERTS", ca),
            ("SPKI_PIN", pin),
            ("CALLBACK_PORT", callback_port.to_string()),
        ],
        Duration::from_secs(120),
    )
    .await;
    for step in [
        "consent page shown",
        "code received",
        "device approved",
        "signed out",
    ] {
        assert!(stdout.contains(step), "missing {step:?}:\n{stdout}");
    }
    assert_screenshots(
        shots,
        &[
            "1-login",
            "2-consent",
            "3-device",
            "4-device-approved",
            "5-account",
        ],
    );
    let tokens = h
        .token_request(
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:device_code".into(),
                ),
                ("device_code", codes["device_code"].as_str().unwrap().into()),
                ("client_id", "wireapp".into()),
            ],
            None,
        )
        .await;
    assert_eq!(tokens.status(), 200, "the approved device gets its tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_through_an_upstream_links_another_and_signs_out() {
    let mut partner = upstream::Idp::spawn(None).await;
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("partner-secret");
    server_kit::files::write_private(&secret, upstream::UPSTREAM_SECRET.as_bytes()).unwrap();
    let partner_toml = format!(
        "id = \"partner\"\ndisplay_name = \"Partner\"\nkind = \"oidc\"\nissuer = \"{}\"\n\
         client_id = \"{}\"\nclient_secret_file = \"{}\"\nfirst_login = \"create\"\n",
        partner.issuer,
        upstream::UPSTREAM_CLIENT_ID,
        secret.display()
    );
    let f = upstream::Federation::start(None, "create", |c| {
        c.upstream.push(toml::from_str(&partner_toml).unwrap());
    })
    .await;
    partner.configure(&f.h.url("/upstream/callback")).await;
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/playwright");
    std::fs::create_dir_all(shots).unwrap();
    let callback_port = client_callback().await;
    let mut authorize = url::Url::parse(&f.h.url("/authorize")).unwrap();
    {
        let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
        let mut query = authorize.query_pairs_mut();
        for (k, v) in params_for(&Pkce::new(), "wireapp", "openid profile") {
            query.append_pair(
                k,
                if k == "redirect_uri" {
                    &redirect_uri
                } else {
                    &v
                },
            );
        }
    }
    let stdout = run_interop(
        "node",
        "federation_browser.mjs",
        &[
            ("ISSUER", f.h.base.clone()),
            ("AUTHORIZE_URL", authorize.to_string()),
            ("SCREENSHOTS", shots.to_owned()),
            ("SPKI_PIN", spki_pin(&f.h)),
            ("CALLBACK_PORT", callback_port.to_string()),
            ("LOGIN", "fern".into()),
            ("PARTNER_LOGIN", "fern-at-partner".into()),
        ],
        Duration::from_secs(120),
    )
    .await;
    for step in ["upstream login", "linked", "unlinked", "signed out"] {
        assert!(stdout.contains(step), "missing {step:?}:\n{stdout}");
    }
    assert_screenshots(
        shots,
        &[
            "f1-login",
            "f2-upstream-login",
            "f3-account",
            "f4-upstream-login",
            "f5-linked",
            "f6-last-way-in",
        ],
    );
    let (store, audit) = f.stopped_store().await;
    let fern = authz_server::users::by_handle(store.as_ref(), "fern")
        .unwrap()
        .unwrap();
    let links = authz_server::store::upstream_links::of_user(store.as_ref(), &fern.id).unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].subject, "fern-at-partner");
    assert_eq!(audit.matches("\"session.ended\"").count(), 1);
}
