//! Small-order Ed25519 keys over HTTPS: with the identity point as the key, the signature
//! `R = identity, S = 0` verifies for any message under a cofactorless check. Such a key can
//! neither create an ACME account nor be certified through a CSR, in either encoding of the
//! point (the canonical one, and the one with the sign bit set that once slipped past the
//! "CSR key is an account key" comparison).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::b64;
use serde_json::json;

/// The identity point, in its canonical encoding and with the sign bit set.
fn identity_encodings() -> [[u8; 32]; 2] {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut signed = identity;
    signed[31] |= 0x80;
    [identity, signed]
}

/// The signature that verifies for every message when the key is the identity point.
fn forged_signature() -> [u8; 64] {
    let mut signature = [0u8; 64];
    signature[0] = 1;
    signature
}

#[tokio::test]
async fn a_small_order_account_key_cannot_create_an_account() {
    let env = Env::start().await;
    for key in identity_encodings() {
        let protected = json!({
            "alg": "EdDSA",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64::encode(key)},
            "nonce": env.client.fresh_nonce().await,
            "url": env.client.directory.new_account,
        });
        let body = json!({
            "protected": b64::encode(protected.to_string()),
            "payload": b64::encode(json!({"termsOfServiceAgreed": true}).to_string()),
            "signature": b64::encode(forged_signature()),
        });
        let response = env
            .client
            .send(&env.client.directory.new_account, body.to_string())
            .await;
        assert_problem(response, 400, "badPublicKey").await;
    }
}

#[tokio::test]
async fn a_csr_for_a_small_order_key_is_refused() {
    let env = Env::start().await;
    let e = env.ready().await;
    let real = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let der = CsrSpec::for_device(&e.client_id).sign(&real);
    for key in identity_encodings() {
        // The same request with the identity point as its key and the forged signature.
        let mut forged = der.clone();
        let at = forged
            .windows(32)
            .position(|w| w == real.public_key_raw())
            .expect("the key in the CSR");
        forged[at..at + 32].copy_from_slice(&key);
        let signature_at = forged.len() - 64;
        forged[signature_at..].copy_from_slice(&forged_signature());
        let response = env.finalize(&e, &forged).await;
        assert_problem(response, 400, "badCSR").await;
    }
    // The order is still ready: a good CSR finalizes it.
    let response = env.finalize(&e, &der).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}
