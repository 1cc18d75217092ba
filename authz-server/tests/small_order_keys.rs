//! Small-order Ed25519 keys at the token endpoint over HTTPS: a DPoP proof whose key is the
//! identity point, with the signature `R = identity, S = 0` that verifies for any message under
//! a cofactorless check, gets no token in either encoding of the point, under either name of
//! the algorithm (`EdDSA`, RFC 9864's `Ed25519`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::b64;
use serde_json::{Value, json};

fn forged_proof(h: &Harness, alg: &str, key: [u8; 32]) -> String {
    let header = json!({
        "typ": "dpop+jwt",
        "alg": alg,
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64::encode(key)},
    });
    let claims = json!({
        "jti": proto::random::token(128),
        "htm": "POST",
        "htu": h.url("/token"),
        "iat": h.now(),
    });
    let mut signature = [0u8; 64];
    signature[0] = 1;
    format!(
        "{}.{}.{}",
        b64::encode(header.to_string()),
        b64::encode(claims.to_string()),
        b64::encode(signature)
    )
}

#[tokio::test]
async fn a_dpop_proof_with_a_small_order_key_gets_no_token() {
    let h = Harness::start().await;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut signed = identity;
    signed[31] |= 0x80;
    for (alg, key) in [
        ("EdDSA", identity),
        ("EdDSA", signed),
        ("Ed25519", identity),
        ("Ed25519", signed),
    ] {
        let pkce = Pkce::new();
        let response = h
            .authorize(&authorize_params(&pkce), "alice_wire", &h.password)
            .await;
        assert_eq!(response.status(), 303);
        let code = location_params(&response)["code"].clone();
        let response = h
            .token_request(
                &token_form(&code, &pkce.verifier),
                Some(forged_proof(&h, alg, key)),
            )
            .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{alg}: {body}");
        assert!(body.get("access_token").is_none());
    }
}
