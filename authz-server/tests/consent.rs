//! Consent for third-party clients: asked once, remembered per user and client, denied with
//! `access_denied`, revocable by the user — and a consent page answers only once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

fn webapp_params(pkce: &Pkce) -> Vec<(&'static str, String)> {
    params_for(pkce, "demo-webapp", "openid profile")
}

#[tokio::test]
async fn consent_is_asked_remembered_and_revocable() {
    let h = Harness::start().await;
    let pkce = Pkce::new();

    let response = h
        .authorize(&webapp_params(&pkce), "alice_wire", &h.password)
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("demo-webapp") && page.contains("See your name, handle and team"));
    let denied = h.answer_consent(&ticket_of(&page), "deny").await;
    assert_eq!(denied.status(), 303);
    let params = location_params(&denied);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st-1");

    let page = h
        .authorize(&webapp_params(&pkce), "alice_wire", &h.password)
        .await
        .text()
        .await
        .unwrap();
    let ticket = ticket_of(&page);
    let allowed = h.answer_consent(&ticket, "allow").await;
    assert_eq!(allowed.status(), 303);
    let code = location_params(&allowed)["code"].clone();
    assert_eq!(
        h.answer_consent(&ticket, "allow").await.status(),
        400,
        "a ticket answers once"
    );

    let form = token_form_for("demo-webapp", &code, &pkce.verifier);
    let tokens: Value = h.token_request(&form, None).await.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap().to_owned();

    // Remembered: straight to the code.
    let again = h
        .authorize(&webapp_params(&Pkce::new()), "alice_wire", &h.password)
        .await;
    assert_eq!(again.status(), 303);

    let listed: Value = h
        .client
        .get(h.url("/consents"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["consents"][0]["client_id"], "demo-webapp");
    // The app cannot touch what the user granted others (here: any other client id), and the
    // user's first-party app sees every consent.
    let other = h
        .client
        .delete(h.url("/consents/another-app"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let first_party = h.bearer_login().await;
    let all: Value = h
        .client
        .get(h.url("/consents"))
        .bearer_auth(&first_party)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["consents"][0]["client_id"], "demo-webapp");
    let revoked = h
        .client
        .delete(h.url("/consents/demo-webapp"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let asked = h
        .authorize(&webapp_params(&Pkce::new()), "alice_wire", &h.password)
        .await;
    assert_eq!(asked.status(), 200, "asked again after revocation");

    // First-party clients are not asked.
    let direct = h
        .authorize(&authorize_params(&Pkce::new()), "alice_wire", &h.password)
        .await;
    assert_eq!(direct.status(), 303);
}

#[tokio::test]
async fn withdrawing_consent_ends_what_the_app_was_granted() {
    let h = Harness::start().await;
    let pkce = Pkce::new();
    let params = params_for(&pkce, "demo-webapp", "openid profile offline_access");
    let page = h
        .authorize(&params, "alice_wire", &h.password)
        .await
        .text()
        .await
        .unwrap();
    let allowed = h.answer_consent(&ticket_of(&page), "allow").await;
    let code = location_params(&allowed)["code"].clone();
    let form = token_form_for("demo-webapp", &code, &pkce.verifier);
    let tokens: Value = h.token_request(&form, None).await.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let userinfo = |token: String| h.client.get(h.url("/userinfo")).bearer_auth(token).send();
    assert_eq!(userinfo(at.clone()).await.unwrap().status(), 200);

    // The user withdraws the app's consent (from the first-party app).
    let first_party = h.bearer_login().await;
    let withdrawn = h
        .client
        .delete(h.url("/consents/demo-webapp"))
        .bearer_auth(&first_party)
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), 204);

    // Neither the access token nor the refresh token works any more.
    assert_eq!(userinfo(at).await.unwrap().status(), 401);
    let refreshed = h
        .token_request(
            &[
                ("grant_type", "refresh_token".into()),
                ("refresh_token", refresh),
                ("client_id", "demo-webapp".into()),
            ],
            None,
        )
        .await;
    assert_eq!(refreshed.status(), 400);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // The user's own first-party token is untouched.
    assert_eq!(userinfo(first_party).await.unwrap().status(), 200);

    // Consenting again gives the app a new, working grant (a moment later).
    h.clock.advance(1);
    let pkce = Pkce::new();
    let params = params_for(&pkce, "demo-webapp", "openid profile");
    let page = h
        .authorize(&params, "alice_wire", &h.password)
        .await
        .text()
        .await
        .unwrap();
    let allowed = h.answer_consent(&ticket_of(&page), "allow").await;
    let code = location_params(&allowed)["code"].clone();
    let form = token_form_for("demo-webapp", &code, &pkce.verifier);
    let tokens: Value = h.token_request(&form, None).await.json().await.unwrap();
    let again = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(again).await.unwrap().status(), 200);
}
