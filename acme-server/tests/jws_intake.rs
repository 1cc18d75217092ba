//! The JWS intake refuses each fault with its own problem type, and nothing is created by a
//! refused request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::acme_jws::{KeyId, sign_request};
use proto::b64;
use proto::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

fn new_order_payload() -> Value {
    json!({"identifiers": []})
}

#[tokio::test]
async fn nonces_are_single_use_and_must_be_ours() {
    let env = Env::start().await;
    let account = env.client.new_account().await;
    let url = env.client.directory.new_order.clone();

    let body = sign_request(
        &account.key,
        KeyId::Kid(&account.kid),
        "made-up",
        &url,
        None,
    )
    .unwrap();
    let problem = assert_problem(env.client.send(&url, body).await, 400, "badNonce").await;
    assert_eq!(problem["detail"], "JWS has an invalid anti-replay nonce");

    let nonce = env.client.fresh_nonce().await;
    let payload = json!({"identifiers": identifiers(&env.device().await.2)});
    let body = sign_request(
        &account.key,
        KeyId::Kid(&account.kid),
        &nonce,
        &url,
        Some(&payload),
    )
    .unwrap();
    let first = env.client.send(&url, body.clone()).await;
    assert_eq!(first.status(), 201);
    assert_problem(env.client.send(&url, body).await, 400, "badNonce").await;
}

#[tokio::test]
async fn the_signed_url_must_be_the_request_url() {
    let env = Env::start().await;
    let account = env.client.new_account().await;
    let nonce = env.client.fresh_nonce().await;
    let body = sign_request(
        &account.key,
        KeyId::Kid(&account.kid),
        &nonce,
        &env.client.directory.new_account,
        Some(&new_order_payload()),
    )
    .unwrap();
    let response = env.client.send(&env.client.directory.new_order, body).await;
    assert_problem(response, 403, "unauthorized").await;
}

#[tokio::test]
async fn key_identification_rules_are_enforced() {
    let env = Env::start().await;
    let alice = env.client.new_account().await;
    let mallory = env.client.new_account().await;
    let new_order = env.client.directory.new_order.clone();

    // jwk where kid is required.
    let response = env
        .client
        .post(
            &new_order,
            &alice.key,
            KeyId::Jwk,
            Some(&new_order_payload()),
        )
        .await;
    assert_problem(response, 400, "malformed").await;

    // kid on newAccount.
    let response = env
        .client
        .post(
            &env.client.directory.new_account.clone(),
            &alice.key,
            KeyId::Kid(&alice.kid),
            Some(&json!({})),
        )
        .await;
    assert_problem(response, 400, "malformed").await;

    // Mallory's key with Alice's kid: the signature does not verify with Alice's key.
    let response = env
        .client
        .post(
            &new_order,
            &mallory.key,
            KeyId::Kid(&alice.kid),
            Some(&new_order_payload()),
        )
        .await;
    assert_problem(response, 400, "malformed").await;

    // A kid that names no account.
    let ghost = format!("{}x", alice.kid);
    let response = env
        .client
        .post(
            &new_order,
            &alice.key,
            KeyId::Kid(&ghost),
            Some(&new_order_payload()),
        )
        .await;
    assert_problem(response, 403, "accountDoesNotExist").await;
}

#[tokio::test]
async fn algorithms_outside_the_allow_list_and_bad_bodies_are_refused() {
    let env = Env::start().await;
    let account = env.client.new_account().await;
    let url = env.client.directory.new_order.clone();
    let nonce = env.client.fresh_nonce().await;
    let protected = b64::encode(
        json!({"alg": "HS256", "kid": account.kid, "nonce": nonce, "url": url}).to_string(),
    );
    let body = json!({"protected": protected, "payload": "", "signature": b64::encode("mac")});
    let response = env.client.send(&url, body.to_string()).await;
    assert_problem(response, 400, "badSignatureAlgorithm").await;

    // Unprotected header.
    let nonce = env.client.fresh_nonce().await;
    let signed: Value = serde_json::from_str(
        &sign_request(&account.key, KeyId::Kid(&account.kid), &nonce, &url, None).unwrap(),
    )
    .unwrap();
    let mut with_header = signed.clone();
    with_header["header"] = json!({"kid": account.kid});
    let response = env.client.send(&url, with_header.to_string()).await;
    assert_problem(response, 400, "malformed").await;

    // Wrong content type.
    let response = env
        .client
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(signed.to_string())
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "malformed").await;

    // A body over `[limits] max_body_bytes` (64 KiB by default): 413 as a problem document.
    let response = env
        .client
        .http
        .post(&url)
        .header("content-type", "application/jose+json")
        .body(vec![b'{'; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "malformed").await;

    // Every allow-listed algorithm creates accounts.
    for alg in [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
        Algorithm::Rs256,
    ] {
        env.client.new_account_with(alg).await;
    }
}

#[tokio::test]
async fn new_account_is_idempotent_per_key_and_only_return_existing_finds_nothing_new() {
    let env = Env::start().await;
    let account = env.client.new_account().await;
    let new_account = env.client.directory.new_account.clone();
    let response = env
        .client
        .post(&new_account, &account.key, KeyId::Jwk, Some(&json!({})))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "location"), account.kid);

    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    let response = env
        .client
        .post(
            &new_account,
            &stranger,
            KeyId::Jwk,
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_problem(response, 403, "accountDoesNotExist").await;
    let response = env
        .client
        .post(
            &new_account,
            &stranger,
            KeyId::Jwk,
            Some(&json!({"contact": ["tel:+15551234"]})),
        )
        .await;
    assert_problem(response, 400, "unsupportedContact").await;

    // Deactivation: the account can no longer act.
    let response = env
        .client
        .post_as(
            &account,
            &account.kid,
            Some(&json!({"status": "deactivated"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "deactivated");
    let response = env.client.post_as(&account, &account.kid, None).await;
    assert_problem(response, 403, "unauthorized").await;
}

#[tokio::test]
async fn bad_signature_algorithm_problems_list_the_accepted_algorithms() {
    let env = Env::start().await;
    let url = env.client.directory.new_account.clone();
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwk = key.public_jwk().to_json();
    let accepted: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
    assert!(accepted.contains(&"ES256") && accepted.contains(&"EdDSA"));
    // Outside the allow-list, and an allow-listed algorithm that does not fit the key.
    for alg in ["HS256", "none", "ES384"] {
        let nonce = env.client.fresh_nonce().await;
        let protected =
            b64::encode(json!({"alg": alg, "jwk": jwk, "nonce": nonce, "url": url}).to_string());
        let payload = b64::encode(json!({"termsOfServiceAgreed": true}).to_string());
        let body = json!({"protected": protected, "payload": payload, "signature": "c2ln"});
        let response = env.client.send(&url, body.to_string()).await;
        let problem = assert_problem(response, 400, "badSignatureAlgorithm").await;
        assert_eq!(problem["algorithms"], json!(accepted), "{alg}: {problem}");
    }
}
