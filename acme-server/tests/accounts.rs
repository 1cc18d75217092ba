//! Accounts as real clients make them (RFC 8555 §7.3): Wire's newAccount with its bare contact
//! address, agreement to advertised terms of service (refused without it, never rewritten by
//! an update, not asked when there are none), and statuses named in problem details the way
//! the RFC names them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::acme_jws::KeyId;
use proto::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

/// newAccount with `payload` for a fresh key: (response, key).
async fn new_account(env: &Env, payload: &Value) -> (reqwest::Response, SigningKey) {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let url = env.client.directory.new_account.clone();
    let response = env.client.post(&url, &key, KeyId::Jwk, Some(payload)).await;
    (response, key)
}

#[tokio::test]
async fn wires_new_account_with_a_bare_contact_address_is_accepted_and_stored_as_given() {
    let env = Env::start().await;
    // What rusty-jwt-tools sends (acme/src/account.rs, `new_account_request`).
    let wire = json!({
        "termsOfServiceAgreed": true,
        "contact": ["anonymous@anonymous.invalid"],
        "onlyReturnExisting": false,
    });
    let (response, key) = new_account(&env, &wire).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let kid = header(&response, "location");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["contact"], json!(["anonymous@anonymous.invalid"]));
    let account = Account { key, kid };
    let stored: Value = env.client.get(&account, &account.kid).await;
    assert_eq!(stored["contact"], json!(["anonymous@anonymous.invalid"]));
    assert_eq!(stored["status"], "valid");

    // Malformed addresses and other schemes are still refused (§7.3).
    for (contact, problem) in [
        ("not an address", "invalidContact"),
        ("anonymous@invalid", "invalidContact"),
        ("a@example.com,b@example.com", "invalidContact"),
        ("tel:+15551234", "unsupportedContact"),
    ] {
        let payload = json!({"termsOfServiceAgreed": true, "contact": [contact]});
        let (response, _) = new_account(&env, &payload).await;
        assert_problem(response, 400, problem).await;
    }
    let update = json!({"contact": ["mailto:ops@example.com", "ops2@example.com"]});
    let updated: Value = env
        .client
        .post_as(&account, &account.kid, Some(&update))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["contact"], update["contact"]);
}

#[tokio::test]
async fn advertised_terms_of_service_must_be_agreed_to_and_updates_cannot_rewrite_the_agreement() {
    let env = Env::start().await;
    let terms = "https://example.test/tos";
    let meta = env.client.directory.meta.as_ref().unwrap();
    assert_eq!(meta.terms_of_service.as_deref(), Some(terms));
    for payload in [json!({}), json!({"termsOfServiceAgreed": false})] {
        let (response, _) = new_account(&env, &payload).await;
        let links: Vec<String> = response
            .headers()
            .get_all("link")
            .iter()
            .map(|l| l.to_str().unwrap().to_owned())
            .collect();
        assert!(
            links.contains(&format!("<{terms}>;rel=\"terms-of-service\"")),
            "{links:?}"
        );
        let body = assert_problem(response, 403, "userActionRequired").await;
        assert!(body["detail"].as_str().unwrap().contains(terms), "{body}");
    }

    let account = env.client.new_account().await;
    let stored: Value = env.client.get(&account, &account.kid).await;
    assert_eq!(stored["termsOfServiceAgreed"], true);
    // §7.3.2: the server ignores termsOfServiceAgreed in an update.
    let response = env
        .client
        .post_as(
            &account,
            &account.kid,
            Some(&json!({"termsOfServiceAgreed": false})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["termsOfServiceAgreed"], true);
    let stored: Value = env.client.get(&account, &account.kid).await;
    assert_eq!(stored["termsOfServiceAgreed"], true);
}

#[tokio::test]
async fn without_terms_of_service_no_agreement_is_asked() {
    let env = Env::start_with(|c| c.terms_of_service = None).await;
    let meta = env.client.directory.meta.as_ref().unwrap();
    assert_eq!(meta.terms_of_service, None);
    let (response, _) = new_account(&env, &json!({})).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
}

#[tokio::test]
async fn problem_details_name_statuses_as_rfc_8555_does() {
    let env = Env::start().await;
    let e = env.begin().await;

    // Finalize of a pending order.
    let response = env
        .finalize(
            &e,
            &CsrSpec::for_device(&e.client_id).sign(&credential_key()),
        )
        .await;
    let body = assert_problem(response, 403, "orderNotReady").await;
    assert_eq!(body["detail"], "the order is pending, not ready");

    // A deactivated authorization: its challenge cannot be answered, it cannot be deactivated
    // again.
    let mut authz_url = String::new();
    for url in &e.order.authorizations {
        let authz: proto::acme::Authorization = env.client.get(&e.account, url).await;
        if authz.identifier.kind == "wireapp-device" {
            authz_url.clone_from(url);
        }
    }
    let deactivate = json!({"status": "deactivated"});
    let response = env
        .client
        .post_as(&e.account, &authz_url, Some(&deactivate))
        .await;
    assert_eq!(response.status(), 200);
    let response = env
        .client
        .post_as(&e.account, &authz_url, Some(&deactivate))
        .await;
    let body = assert_problem(response, 400, "malformed").await;
    assert_eq!(
        body["detail"],
        "a deactivated authorization cannot be deactivated"
    );
    let response = env
        .client
        .answer(&e.account, &e.dpop.url, json!({"access_token": "x"}))
        .await;
    let body = assert_problem(response, 400, "malformed").await;
    assert_eq!(
        body["detail"],
        "the authorization is deactivated; its challenges can no longer be answered"
    );

    // A deactivated account.
    let response = env
        .client
        .post_as(&e.account, &e.account.kid, Some(&deactivate))
        .await;
    assert_eq!(response.status(), 200);
    let response = env.client.post_as(&e.account, &e.account.kid, None).await;
    let body = assert_problem(response, 403, "unauthorized").await;
    assert_eq!(body["detail"], "the account is deactivated");
}

/// The account's orders list (one page).
async fn orders_of(env: &Env, account: &Account) -> Value {
    let url = format!("{}/orders", account.kid);
    let body: Value = env.client.get(account, &url).await;
    body["orders"].clone()
}

#[tokio::test]
async fn the_orders_list_leaves_out_invalid_orders() {
    let env = Env::start().await;
    let e = env.begin().await;
    // A second order, invalid once one of its authorizations is deactivated.
    let (failed_url, failed) = env
        .client
        .new_order(&e.account, &identifiers(&e.client_id))
        .await;
    assert_eq!(
        orders_of(&env, &e.account).await.as_array().unwrap().len(),
        2
    );
    let deactivate = json!({"status": "deactivated"});
    let response = env
        .client
        .post_as(&e.account, &failed.authorizations[0], Some(&deactivate))
        .await;
    assert_eq!(response.status(), 200);
    let order: proto::acme::Order = env.client.get(&e.account, &failed_url).await;
    assert_eq!(order.status, proto::acme::OrderStatus::Invalid);
    assert_eq!(orders_of(&env, &e.account).await, json!([e.order_url]));

    // An order past its expiry is invalid too.
    env.authz.clock.advance(3600 + 1);
    env.client.forget_nonce();
    assert_eq!(orders_of(&env, &e.account).await, json!([]));
    let (next_url, _) = env
        .client
        .new_order(&e.account, &identifiers(&e.client_id))
        .await;
    assert_eq!(orders_of(&env, &e.account).await, json!([next_url]));
}
