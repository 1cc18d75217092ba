//! Standard (dns/ip) certificates and the identity CA over HTTPS against the real server:
//! standard orders are refused unless enabled, and once enabled their certificates chain to a
//! root of their own, never to the identity root a mutual-TLS service trusts (checked with
//! `openssl verify` and by signature).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::assert_problem;
use common::standard::Fixture;
use serde_json::json;

/// The DER certificates of a PEM file or text.
fn certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .map(|p| p.unwrap().contents)
        .collect()
}

/// `openssl verify` of `leaf` with `chain` as untrusted intermediates, trusting `root` only,
/// for the purpose a mutual-TLS server checks of a client; whether it verifies, and what
/// openssl said.
fn openssl_verify(root: &Path, chain: &Path, leaf: &Path) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(root)
        .arg("-untrusted")
        .arg(chain)
        .arg(leaf)
        .output()
        .expect("openssl must be installed (`cargo xtask test` installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn standard_orders_are_refused_unless_enabled() {
    let f = Fixture::start_with(|c| c.standard_orders.enabled = false).await;
    let account = f.client.new_account().await;
    let url = f.client.directory.new_order.clone();
    let ids = json!({"identifiers": [
        {"type": "dns", "value": "a.example.test"},
        {"type": "ip", "value": "127.0.0.1"},
    ]});
    let response = f.client.post_as(&account, &url, Some(&ids)).await;
    let problem = assert_problem(response, 400, "rejectedIdentifier").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("[standard_orders] enabled"), "{detail}");
    assert_eq!(problem["subproblems"].as_array().unwrap().len(), 2);
    // Nothing advertises them, and no name CA exists.
    let profiles = &f.client.directory.meta.as_ref().unwrap().profiles;
    assert_eq!(profiles.keys().collect::<Vec<_>>(), ["wire-identity"]);
    assert!(f.server.names_ca_root.is_none());
    assert!(!f.dir.path().join("ca/names").exists());
    let crl = f.client.directory_url.replace("directory", "crl/names");
    let response = f.client.http.get(crl).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_name_certificate_does_not_chain_to_the_identity_root() {
    let f = Fixture::start().await;
    let account = f.client.new_account().await;
    let names = ["tls.example.test", "127.0.0.1"];
    let (order_url, order) = f
        .order(&account, &[("dns", names[0]), ("ip", names[1])])
        .await;
    let (order, _) = f.finalize(&account, &order_url, &order, &names).await;
    let (chain, leaf) = f.chain(&account, &order.certificate.unwrap()).await;
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth, "the tls profile");

    let dir = f.dir.path();
    std::fs::write(dir.join("chain.pem"), &chain).unwrap();
    let leaf_pem = chain.split_inclusive("-----END CERTIFICATE-----\n").next();
    std::fs::write(dir.join("leaf.pem"), leaf_pem.unwrap()).unwrap();

    // A service trusting the identity root does not admit it...
    let identity_root = &f.server.ca_root;
    let (verified, said) =
        openssl_verify(identity_root, &dir.join("chain.pem"), &dir.join("leaf.pem"));
    assert!(
        !verified,
        "a name certificate verified against the identity root: {said}"
    );
    // ...while the name root does: the chain is complete and sound.
    let names_root = f.server.names_ca_root.clone().unwrap();
    let (verified, said) =
        openssl_verify(&names_root, &dir.join("chain.pem"), &dir.join("leaf.pem"));
    assert!(verified, "{said}");

    // By signature: the intermediate in the chain was not signed by the identity root, and the
    // two roots share no key.
    let chain_certs = certificates(chain.as_bytes());
    let (_, intermediate) = x509_parser::parse_x509_certificate(&chain_certs[1]).unwrap();
    let identity_der = certificates(&std::fs::read(identity_root).unwrap());
    let (_, identity) = x509_parser::parse_x509_certificate(&identity_der[0]).unwrap();
    let names_der = certificates(&std::fs::read(&names_root).unwrap());
    let (_, names_root_cert) = x509_parser::parse_x509_certificate(&names_der[0]).unwrap();
    assert!(
        intermediate
            .verify_signature(Some(identity.public_key()))
            .is_err()
    );
    intermediate
        .verify_signature(Some(names_root_cert.public_key()))
        .unwrap();
    assert_ne!(identity.public_key().raw, names_root_cert.public_key().raw);
    assert_ne!(identity.subject(), names_root_cert.subject());
    // The identity intermediate is not the issuer either.
    let identity_intermediate =
        certificates(&std::fs::read(f.dir.path().join("ca/intermediate.pem")).unwrap());
    assert_ne!(chain_certs[1], identity_intermediate[0]);
}

#[test]
fn ca_init_creates_the_name_ca_only_for_enabled_standard_orders() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("acme");
    let ca_init = |config: Option<&Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_acme-server"));
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        command
            .arg("--data-dir")
            .arg(&data)
            .args(["ca", "init", "--name", "Test"])
            .output()
            .unwrap()
    };
    assert!(ca_init(None).status.success());
    assert!(data.join("ca/intermediate.pem").exists());
    assert!(!data.join("ca/names").exists(), "standard orders are off");

    let enabled = dir.path().join("acme.toml");
    std::fs::write(&enabled, "[standard_orders]\nenabled = true\n").unwrap();
    let out = ca_init(Some(&enabled));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("identity CA exists, kept"));
    let names = certificates(&std::fs::read(data.join("ca/names/intermediate.pem")).unwrap());
    let (_, names) = x509_parser::parse_x509_certificate(&names[0]).unwrap();
    assert_eq!(names.issuer().to_string(), "CN=Test Names Root CA");

    // Nothing left to create: refused, nothing overwritten.
    let identity_before = std::fs::read(data.join("ca/intermediate-key.pem")).unwrap();
    assert!(!ca_init(Some(&enabled)).status.success());
    assert_eq!(
        std::fs::read(data.join("ca/intermediate-key.pem")).unwrap(),
        identity_before
    );
}
