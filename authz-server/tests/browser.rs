//! A real browser on the login, consent, device verification and account pages, in one
//! session that it signs out of at the end: Debian's chromium
//! driven by playwright-core (installed by `cargo xtask test`); screenshots are kept in
//! `target/playwright/` as test artifacts. The device then gets its tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

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
    // Chromium trusts exactly this server's key (its SPKI pin), not the whole dev CA.
    let server_pem = std::fs::read(h.dir.path().join("tls/server.pem")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&server_pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let pin = {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(cert.public_key().raw))
    };
    // The client's redirect target: answers every request with 200.
    let callback = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback_port = callback.local_addr().unwrap().port();
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
    for shot in [
        "1-login",
        "2-consent",
        "3-device",
        "4-device-approved",
        "5-account",
    ] {
        let png = std::fs::read(format!("{shots}/{shot}.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{shot}.png is a PNG");
    }
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
