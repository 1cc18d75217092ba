//! Dev PKIs side by side: each root has a name of its own and each server certificate names its
//! root's key, so one bundle holding several dev roots verifies every server certificate with
//! `openssl verify` (as curl with a CA bundle of both servers' roots does).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn subject(pem: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(pem)
        .output()
        .expect("openssl must be installed (`cargo xtask test` installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_bundle_of_two_dev_roots_verifies_both_server_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let first = server_kit::tls::ensure_dev_tls(&dir.path().join("a"), None).unwrap();
    let second = server_kit::tls::ensure_dev_tls(&dir.path().join("b"), None).unwrap();
    assert_ne!(subject(&first.ca_cert), subject(&second.ca_cert));
    let bundle = dir.path().join("bundle.pem");
    let mut roots = std::fs::read(&first.ca_cert).unwrap();
    roots.extend(std::fs::read(&second.ca_cert).unwrap());
    std::fs::write(&bundle, roots).unwrap();
    for pki in [&first, &second] {
        let out = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&bundle)
            .arg(&pki.cert)
            .output()
            .expect("openssl must be installed (`cargo xtask test` installs it)");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
