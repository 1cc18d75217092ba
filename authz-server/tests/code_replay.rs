//! A replayed authorization code revokes the whole grant it produced (RFC 6749 §4.1.2, OAuth 2.1
//! §4.1.3): the first access token, the refresh token family (old and rotated tokens) and every
//! access token minted by refreshing — sequentially, and when one code is redeemed by 100
//! requests at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

/// A fresh code of the demo client and its PKCE verifier.
async fn new_code(h: &Harness) -> (String, String) {
    let pkce = Pkce::new();
    let response = h
        .authorize(&authorize_params(&pkce), "alice_wire", &h.password)
        .await;
    assert_eq!(response.status(), 303);
    (location_params(&response)["code"].clone(), pkce.verifier)
}

fn refresh_form(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", token.into()),
        ("client_id", "wireapp".into()),
    ]
}

async fn userinfo_status(h: &Harness, token: &str) -> u16 {
    h.client
        .get(h.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asserts that the refresh token is refused with `invalid_grant` and mints nothing.
async fn assert_refresh_refused(h: &Harness, token: &str) {
    let response = h.token_request(&refresh_form(token), None).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body.get("access_token").is_none());
}

fn field(body: &Value, name: &str) -> String {
    body[name].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_replayed_code_revokes_the_refresh_family_and_every_access_token_of_the_grant() {
    let h = Harness::start().await;
    let (code, verifier) = new_code(&h).await;
    let response = h.token_request(&token_form(&code, &verifier), None).await;
    assert_eq!(response.status(), 200);
    let first: Value = response.json().await.unwrap();
    let (first_at, first_rt) = (
        field(&first, "access_token"),
        field(&first, "refresh_token"),
    );

    // One refresh before the replay: a second access token and a rotated refresh token.
    let response = h.token_request(&refresh_form(&first_rt), None).await;
    assert_eq!(response.status(), 200);
    let refreshed: Value = response.json().await.unwrap();
    let (second_at, second_rt) = (
        field(&refreshed, "access_token"),
        field(&refreshed, "refresh_token"),
    );
    assert_eq!(userinfo_status(&h, &first_at).await, 200);
    assert_eq!(userinfo_status(&h, &second_at).await, 200);

    // The replay is refused and takes everything issued from the code with it.
    let replay = h.token_request(&token_form(&code, &verifier), None).await;
    assert_eq!(replay.status(), 400);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none());

    assert_eq!(userinfo_status(&h, &first_at).await, 401);
    assert_eq!(userinfo_status(&h, &second_at).await, 401);
    // The rotated token first: refusing the old one first would revoke the family by reuse
    // detection and hide whether the replay did.
    assert_refresh_refused(&h, &second_rt).await;
    assert_refresh_refused(&h, &first_rt).await;

    // Another grant of the same user and client is untouched.
    let other = h.login(None).await;
    assert_eq!(
        userinfo_status(&h, &field(&other, "access_token")).await,
        200
    );
    let response = h
        .token_request(&refresh_form(&field(&other, "refresh_token")), None)
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_code_redeemed_by_100_requests_at_once_yields_one_grant_then_nothing_works() {
    let h = Harness::start().await;
    let (code, verifier) = new_code(&h).await;
    let form = token_form(&code, &verifier);
    let racing: Vec<_> = (0..100)
        .map(|_| {
            let (client, url, form) = (h.client.clone(), h.url("/token"), form.clone());
            tokio::spawn(async move {
                let response = client.post(url).form(&form).send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut granted = Vec::new();
    for answer in racing {
        let (status, body) = answer.await.unwrap();
        match status {
            200 => granted.push(body),
            _ => {
                assert_eq!(
                    (status, body["error"].as_str()),
                    (400, Some("invalid_grant"))
                );
                assert!(body.get("access_token").is_none());
            }
        }
    }
    assert_eq!(granted.len(), 1, "exactly one redemption succeeds");
    let tokens = &granted[0];

    // Every other request was a replay of the code: nothing of the grant works any more.
    assert_eq!(
        userinfo_status(&h, &field(tokens, "access_token")).await,
        401
    );
    assert_refresh_refused(&h, &field(tokens, "refresh_token")).await;
}
