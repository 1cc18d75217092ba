//! The device authorization grant (RFC 8628) over HTTPS: pending, slow_down, approval on the
//! verification page, tokens once (with an ID token when `openid` was asked); denial; expiry; a
//! wrong password on the page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn start(h: &Harness) -> Value {
    start_with_scope(h, "openid profile").await
}

async fn start_with_scope(h: &Harness, scope: &str) -> Value {
    let response = h
        .client
        .post(h.url("/device_authorization"))
        .form(&[("client_id", "wireapp"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn poll(h: &Harness, device_code: &str) -> (u16, Value) {
    let response = h
        .token_request(
            &[
                ("grant_type", GRANT.into()),
                ("device_code", device_code.into()),
                ("client_id", "wireapp".into()),
            ],
            None,
        )
        .await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn decide(h: &Harness, user_code: &str, password: &str, action: &str) -> (u16, String) {
    let response = h
        .client
        .post(h.url("/device"))
        .form(&[
            ("user_code", user_code),
            ("username", "alice_wire"),
            ("password", password),
            ("action", action),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_device_polls_until_the_user_approves() {
    let h = Harness::start().await;
    let codes = start(&h).await;
    let device_code = codes["device_code"].as_str().unwrap();
    let user_code = codes["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(codes["interval"], 5);
    assert!(
        codes["verification_uri_complete"]
            .as_str()
            .unwrap()
            .ends_with(user_code)
    );

    let (status, body) = poll(&h, device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (_, body) = poll(&h, device_code).await;
    assert_eq!(body["error"], "slow_down", "polled again at once");
    h.clock.advance(11);
    let (_, body) = poll(&h, device_code).await;
    assert_eq!(body["error"], "authorization_pending");

    let page = h
        .client
        .get(codes["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(user_code));

    let (status, _) = decide(&h, user_code, "wrong password", "approve").await;
    assert_eq!(status, 401);
    // Users type codes loosely.
    let typed = user_code.replace('-', " ").to_lowercase();
    let (status, text) = decide(&h, &typed, &h.password, "approve").await;
    assert_eq!(status, 200);
    assert!(text.contains("connected"));

    h.clock.advance(11);
    let (status, tokens) = poll(&h, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    let at = tokens["access_token"].as_str().unwrap();
    let me = h
        .client
        .get(h.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let (status, body) = poll(&h, device_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "tokens once"
    );
}

#[tokio::test]
async fn denial_and_expiry_end_the_polling() {
    let h = Harness::start().await;
    let denied = start(&h).await;
    let (status, _) = decide(
        &h,
        denied["user_code"].as_str().unwrap(),
        &h.password,
        "deny",
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = poll(&h, denied["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "access_denied");

    let late = start(&h).await;
    h.clock.advance(601);
    let (_, body) = poll(&h, late["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "expired_token");
    let (status, _) = decide(
        &h,
        late["user_code"].as_str().unwrap(),
        &h.password,
        "approve",
    )
    .await;
    assert_eq!(status, 400, "an expired code cannot be approved");
}

#[tokio::test]
async fn an_openid_device_grant_comes_with_an_id_token_without_a_nonce() {
    let h = Harness::start().await;
    let approved = |scope: &'static str| {
        let h = &h;
        async move {
            let codes = start_with_scope(h, scope).await;
            let approved_at = h.now();
            let (status, _) = decide(
                h,
                codes["user_code"].as_str().unwrap(),
                &h.password,
                "approve",
            )
            .await;
            assert_eq!(status, 200);
            let (status, tokens) = poll(h, codes["device_code"].as_str().unwrap()).await;
            assert_eq!(status, 200, "{tokens}");
            (approved_at, tokens)
        }
    };
    let (approved_at, tokens) = approved("openid profile").await;
    let id = h.verified_id_token(&tokens).await;
    assert_eq!(id["iss"], h.base.as_str());
    assert_eq!(id["aud"], "wireapp");
    assert_eq!(id["azp"], "wireapp");
    assert_eq!(id["preferred_username"], "alice_wire@wire.com");
    assert_eq!(id["auth_time"], approved_at, "when the user approved");
    // The device flow has no authorization request, so no nonce to return.
    assert!(!id.contains_key("nonce"), "{id:?}");
    let at = tokens["access_token"].as_str().unwrap();
    let at_hash = {
        use sha2::{Digest, Sha256};
        proto::b64::encode(&Sha256::digest(at.as_bytes())[..16])
    };
    assert_eq!(id["at_hash"], at_hash.as_str());
    let me: Value = h
        .client
        .get(h.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(id["sub"], me["sub"]);

    // Without openid, no ID token.
    let (_, tokens) = approved("wire_client_id").await;
    assert!(tokens.get("id_token").is_none(), "{tokens}");
}
