//! End-to-end enrollment with the SDK against both real servers on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use client_sdk::{Enrollment, KeyAlgorithm};
use tests::stack::{DOMAIN, Stack};

#[tokio::test]
async fn a_device_enrolls_with_ed25519_and_with_p256() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::P256] {
        let mut config = stack.demo_config();
        config.algorithm = algorithm;
        let enrolled = Enrollment::new(config).run().await.unwrap();
        assert_eq!(
            enrolled.certificate.subject,
            format!("O={DOMAIN}, CN=Alice Smith")
        );
        assert_eq!(enrolled.identity.handle.handle(), "alice_wire");
        assert!(enrolled.chain_pem.matches("BEGIN CERTIFICATE").count() == 2);
        let expected = match algorithm {
            KeyAlgorithm::Ed25519 => "Ed25519",
            _ => "ECDSA P-256",
        };
        assert_eq!(enrolled.certificate.key_algorithm, expected);
    }
    stack.shutdown().await.unwrap();
}
