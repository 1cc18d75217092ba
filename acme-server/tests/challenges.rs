//! `wire-dpop-01` and `wire-oidc-01` answers that must fail, each with its problem type, and
//! the state they leave behind: the challenge, its authorization and the order become
//! `invalid`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::acme::{Authorization, ChallengeStatus, Order, OrderStatus};
use proto::wire_id::key_authorization;
use serde_json::json;

async fn assert_invalidated(env: &Env, e: &Enrollment, authz_url: &str) {
    let authz: Authorization = env.client.get(&e.account, authz_url).await;
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Invalid);
    assert!(authz.challenges[0].error.is_some());
    let order: Order = env.client.get(&e.account, &e.order_url).await;
    assert_eq!(order.status, OrderStatus::Invalid);
    assert!(order.error.is_some());
}

async fn assert_refused(response: reqwest::Response, status: u16, kind: &str, needle: &str) {
    let problem = assert_problem(response, status, kind).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(needle), "{problem}");
}

fn device_authz_url(e: &Enrollment) -> String {
    e.dpop
        .url
        .replace("/challenge/", "/authz/")
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned()
}

fn user_authz_url(e: &Enrollment) -> String {
    e.oidc
        .url
        .replace("/challenge/", "/authz/")
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned()
}

#[tokio::test]
async fn an_access_token_bound_to_another_accounts_key_is_unauthorized() {
    let env = Env::start().await;
    let e = env.begin().await;
    let other = env.client.new_account().await;
    // The device obtains a token with a proof signed by another key than its account's.
    let token = env
        .access_token(&e.bearer, &e.device, &e.client_id, &other.key, &e.dpop)
        .await;
    let response = env
        .client
        .answer(&e.account, &e.dpop.url, json!({ "access_token": token }))
        .await;
    assert_problem(response, 403, "unauthorized").await;
    assert_invalidated(&env, &e, &device_authz_url(&e)).await;
}

#[tokio::test]
async fn an_access_token_for_another_challenge_is_an_incorrect_response() {
    let env = Env::start().await;
    let e = env.begin().await;
    let mut other = e.dpop.clone();
    other.token = "OysCZNnV2iJTYfjmTUJZ6vavXXkzPFLf".into();
    let token = env
        .access_token(&e.bearer, &e.device, &e.client_id, &e.account.key, &other)
        .await;
    let response = env
        .client
        .answer(&e.account, &e.dpop.url, json!({ "access_token": token }))
        .await;
    assert_refused(response, 400, "incorrectResponse", "chal").await;
    assert_invalidated(&env, &e, &device_authz_url(&e)).await;
}

#[tokio::test]
async fn an_access_token_for_a_device_not_in_the_order_is_a_rejected_identifier() {
    let env = Env::start().await;
    let e = env.begin().await;
    // A second device of the same user gets a genuine token for its own client id.
    let (device2, client_id2) = env.authz.register_device(&e.bearer).await;
    let client_id2 = proto::wire_id::ClientId::parse(&client_id2).unwrap();
    let mut challenge = e.dpop.clone();
    challenge.target = Some(format!("{}/clients/{device2}/access-token", env.authz.base));
    let token = env
        .access_token(&e.bearer, &device2, &client_id2, &e.account.key, &challenge)
        .await;
    let response = env
        .client
        .answer(&e.account, &e.dpop.url, json!({ "access_token": token }))
        .await;
    // Its iss (the other device's access-token URL) is checked first.
    assert_problem(response, 400, "incorrectResponse").await;
    assert_invalidated(&env, &e, &device_authz_url(&e)).await;
}

#[tokio::test]
async fn an_expired_access_token_is_an_incorrect_response() {
    let env = Env::start().await;
    let e = env.begin().await;
    let token = env
        .access_token(&e.bearer, &e.device, &e.client_id, &e.account.key, &e.dpop)
        .await;
    // Past the token's lifetime and the skew allowance the verifier grants.
    env.authz
        .clock
        .advance(360 + proto::dpop::DEFAULT_WIRE_SKEW + 1);
    // (Longer than an ACME nonce lives: fetch a fresh one.)
    env.client.forget_nonce();
    let response = env
        .client
        .answer(&e.account, &e.dpop.url, json!({ "access_token": token }))
        .await;
    assert_refused(response, 400, "incorrectResponse", "expired").await;
}

#[tokio::test]
async fn id_tokens_with_the_wrong_keyauth_or_acme_aud_are_incorrect_responses() {
    let env = Env::start().await;
    let thumbprint = |e: &Enrollment| e.account.key.public_jwk().thumbprint();

    let e = env.begin().await;
    let wrong_keyauth = key_authorization(&e.dpop.token, &thumbprint(&e));
    let id_token = env.id_token(&wrong_keyauth, &e.oidc.url).await;
    let response = env
        .client
        .answer(&e.account, &e.oidc.url, json!({ "id_token": id_token }))
        .await;
    assert_refused(response, 400, "incorrectResponse", "keyauth").await;
    assert_invalidated(&env, &e, &user_authz_url(&e)).await;

    let e = env.begin().await;
    let keyauth = key_authorization(&e.oidc.token, &thumbprint(&e));
    let id_token = env.id_token(&keyauth, &e.dpop.url).await;
    let response = env
        .client
        .answer(&e.account, &e.oidc.url, json!({ "id_token": id_token }))
        .await;
    assert_refused(response, 400, "incorrectResponse", "acme_aud").await;

    // A key authorization made with another account's key.
    let e = env.begin().await;
    let other = env.client.new_account().await;
    let keyauth = key_authorization(&e.oidc.token, &other.key.public_jwk().thumbprint());
    let id_token = env.id_token(&keyauth, &e.oidc.url).await;
    let response = env
        .client
        .answer(&e.account, &e.oidc.url, json!({ "id_token": id_token }))
        .await;
    assert_problem(response, 400, "incorrectResponse").await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_an_incorrect_response() {
    // The CA trusts "https://idp.other.test", fetching its keys from the authz-server's JWKS:
    // the authz-server's own ID tokens then carry the wrong `iss`.
    let env = Env::start_with(|c| {
        c.wire_oidc.jwks_url = Some(format!("{}/jwks", c.wire_oidc.issuer));
        c.wire_oidc.issuer = "https://idp.other.test".into();
    })
    .await;
    let e = env.begin().await;
    assert_eq!(e.oidc.target.as_deref(), Some("https://idp.other.test"));
    let keyauth = key_authorization(&e.oidc.token, &e.account.key.public_jwk().thumbprint());
    let id_token = env.id_token(&keyauth, &e.oidc.url).await;
    let response = env
        .client
        .answer(&e.account, &e.oidc.url, json!({ "id_token": id_token }))
        .await;
    assert_refused(response, 400, "incorrectResponse", "iss").await;
}

#[tokio::test]
async fn answers_of_the_wrong_shape_are_malformed_and_leave_the_challenge_pending() {
    let env = Env::start().await;
    let e = env.begin().await;
    let response = env
        .client
        .answer(&e.account, &e.dpop.url, json!({ "id_token": "x" }))
        .await;
    assert_problem(response, 400, "malformed").await;
    let authz: Authorization = env.client.get(&e.account, &device_authz_url(&e)).await;
    assert_eq!(authz.challenges[0].status, ChallengeStatus::Pending);
    // A valid challenge answered again stays valid.
    env.pass_dpop(&e).await;
    let response = env
        .client
        .answer(&e.account, &e.dpop.url, json!({ "access_token": "junk" }))
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "valid");
}

#[tokio::test]
async fn orders_and_authorizations_are_invisible_to_other_accounts() {
    let env = Env::start().await;
    let e = env.begin().await;
    let other = env.client.new_account().await;
    for url in [&e.order_url, &e.order.authorizations[0], &e.dpop.url] {
        let response = env.client.post_as(&other, url, None).await;
        assert_problem(response, 404, "malformed").await;
    }
    let response = env
        .client
        .post_as(&other, &e.order.finalize, Some(&finalize_payload(b"x")))
        .await;
    assert_problem(response, 404, "malformed").await;
    let response = env.client.post_as(&other, &e.account.kid, None).await;
    assert_problem(response, 403, "unauthorized").await;
}

#[tokio::test]
async fn orders_and_authorizations_expire() {
    let env = Env::start().await;
    let e = env.begin().await;
    let token = env
        .access_token(&e.bearer, &e.device, &e.client_id, &e.account.key, &e.dpop)
        .await;
    env.authz.clock.advance(3600 + 1);
    env.client.forget_nonce();
    let order: Order = env.client.get(&e.account, &e.order_url).await;
    assert_eq!(order.status, OrderStatus::Invalid);
    let authz: Authorization = env.client.get(&e.account, &device_authz_url(&e)).await;
    assert_eq!(authz.status, proto::acme::AuthorizationStatus::Expired);
    let response = env
        .client
        .answer(&e.account, &e.dpop.url, json!({ "access_token": token }))
        .await;
    assert_problem(response, 400, "malformed").await;
    let der = CsrSpec::for_device(&e.client_id).sign(&credential_key());
    assert_problem(env.finalize(&e, &der).await, 403, "orderNotReady").await;
}
