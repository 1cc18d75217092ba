//! Permission sources (issue 19 item 2): a `[[claims_source]]` is asked at every issue of a
//! user's access token, with the user, client, scope and RFC 8707 `resource`; its answer becomes
//! access-token claims; a refresh asks again; a source that fails answers by its `on_failure`
//! (fail closed: 503 `temporarily_unavailable` and nothing consumed; or the token without its
//! claims). The source here is a real HTTP service on loopback standing for the user's own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use authz_server::claims_sources::ClaimsSourceConfig;
use common::own_service::{Answer, OwnService, closed_url};
use common::*;
use proto::pkce::Pkce;
use serde_json::{Value, json};

const GAME: &str = "https://game.test/servers/";

/// A source at `url` mapping the answer's `permissions` to `entitlements`, with `extra` keys.
fn source(url: &str, extra: &str) -> ClaimsSourceConfig {
    toml::from_str(&format!(
        "id = \"perms\"\nurl = \"{url}\"\n{extra}\n[claims]\nentitlements = \"/permissions\"\n"
    ))
    .unwrap()
}

fn permissions(list: &[&str]) -> Answer {
    Answer::Json(200, json!({ "permissions": list, "not_mapped": true }))
}

/// A code for the demo user at the demo client, not yet redeemed, and its verifier.
async fn code(h: &Harness) -> (String, String) {
    let pkce = Pkce::new();
    let response = h
        .authorize(&authorize_params(&pkce), "alice_wire", &h.password)
        .await;
    assert_eq!(response.status(), 303);
    (location_params(&response)["code"].clone(), pkce.verifier)
}

async fn redeem(
    h: &Harness,
    (code, verifier): &(String, String),
    resource: Option<&str>,
) -> reqwest::Response {
    let mut form = token_form(code, verifier);
    if let Some(resource) = resource {
        form.push(("resource", resource.into()));
    }
    h.token_request(&form, None).await
}

async fn refresh(h: &Harness, token: &str, resource: Option<&str>) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", token.to_owned()),
        ("client_id", "wireapp".to_owned()),
    ];
    if let Some(resource) = resource {
        form.push(("resource", resource.into()));
    }
    h.token_request(&form, None).await
}

async fn tokens(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn assert_oauth_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    body
}

fn access_claims(tokens: &Value) -> Value {
    claims_of(tokens["access_token"].as_str().unwrap())
}

#[tokio::test]
async fn permissions_reach_the_access_token_and_follow_the_service_at_every_refresh() {
    let service = OwnService::start(permissions(&["play"])).await;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("perms-token");
    std::fs::write(&token_file, "s3rvice-token\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = service.url("/permissions");
    let h = Harness::start_with(|c| {
        c.claims_source = vec![source(
            &url,
            &format!("cache_secs = 0\nbearer_token_file = {:?}", token_file),
        )]
    })
    .await;

    let first = tokens(redeem(&h, &code(&h).await, None).await).await;
    let at = access_claims(&first);
    assert_eq!(at["entitlements"], json!(["play"]));
    assert!(at.get("not_mapped").is_none(), "{at}");
    assert_eq!(at["aud"], json!(h.base));
    let asked = service.seen();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (asked[0].method.as_str(), asked[0].target.as_str()),
        ("POST", "/permissions")
    );
    assert_eq!(
        asked[0].authorization.as_deref(),
        Some("Bearer s3rvice-token")
    );
    let question = asked[0].json();
    assert_eq!(question["sub"], at["sub"]);
    assert_eq!(question["handle"], "alice_wire");
    assert_eq!(question["client_id"], "wireapp");
    assert_eq!(question["scope"], at["scope"]);
    assert!(question.get("resource").is_none(), "{question}");

    // The refresh token is an opaque handle: it carries nothing, and the ID token neither.
    let refresh_token = first["refresh_token"].as_str().unwrap().to_owned();
    assert!(!refresh_token.contains('.'), "{refresh_token}");
    assert!(
        claims_of(first["id_token"].as_str().unwrap())
            .get("entitlements")
            .is_none()
    );

    // Each refresh asks again and carries what the service says then.
    service.answer(permissions(&["play", "build"]));
    let second = tokens(refresh(&h, &refresh_token, None).await).await;
    assert_eq!(
        access_claims(&second)["entitlements"],
        json!(["play", "build"])
    );
    service.answer(Answer::Json(200, json!({})));
    let third = tokens(refresh(&h, second["refresh_token"].as_str().unwrap(), None).await).await;
    assert!(access_claims(&third).get("entitlements").is_none());
    assert_eq!(service.seen().len(), 3);

    // An access token presented as a refresh token is refused, and asks nothing.
    let access = third["access_token"].as_str().unwrap();
    assert_oauth_error(refresh(&h, access, None).await, 400, "invalid_grant").await;
    assert_eq!(service.seen().len(), 3);
}

#[tokio::test]
async fn a_source_that_fails_closed_refuses_and_consumes_nothing() {
    let service = OwnService::start(Answer::Json(500, json!({"oops": 1}))).await;
    let url = service.url("/permissions");
    let h = Harness::start_with(|c| {
        c.claims_source = vec![source(
            &url,
            "cache_secs = 0\nfailure_cache_secs = 0\ntimeout_ms = 500",
        )]
    })
    .await;

    // The code is refused while the service fails, and redeems once it answers.
    let code = code(&h).await;
    let refused = redeem(&h, &code, None).await;
    assert_eq!(refused.headers()["retry-after"], "1");
    let body = assert_oauth_error(refused, 503, "temporarily_unavailable").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("perms"),
        "{body}"
    );
    service.answer(permissions(&["play"]));
    let issued = tokens(redeem(&h, &code, None).await).await;
    assert_eq!(access_claims(&issued)["entitlements"], json!(["play"]));

    // The same for a refresh token: refused while the service does not answer, usable after.
    service.answer(Answer::Hold(json!({"permissions": ["late"]})));
    let refresh_token = issued["refresh_token"].as_str().unwrap();
    let started = Instant::now();
    assert_oauth_error(
        refresh(&h, refresh_token, None).await,
        503,
        "temporarily_unavailable",
    )
    .await;
    assert!(
        started.elapsed().as_secs() < 10,
        "the 500 ms timeout bounds the wait"
    );
    service.answer(permissions(&["play", "chat"]));
    let refreshed = tokens(refresh(&h, refresh_token, None).await).await;
    assert_eq!(
        access_claims(&refreshed)["entitlements"],
        json!(["play", "chat"])
    );
    service.release();
}

#[tokio::test]
async fn a_source_that_may_be_left_out_issues_without_its_claims() {
    let down = closed_url();
    let h = Harness::start_with(|c| c.claims_source = vec![source(&down, "on_failure = \"omit\"")])
        .await;
    let issued = tokens(redeem(&h, &code(&h).await, None).await).await;
    let at = access_claims(&issued);
    assert!(at.get("entitlements").is_none(), "{at}");
    assert_eq!(at["sub"].as_str().map(str::is_empty), Some(false));
}

#[tokio::test]
async fn a_resource_chooses_the_sources_and_the_audience() {
    let game = OwnService::start(permissions(&["join:eu-1"])).await;
    let plain = OwnService::start(Answer::Json(200, json!({"tier": "gold"}))).await;
    let (game_url, plain_url) = (game.url("/perms"), plain.url("/tier"));
    let h = Harness::start_with(|c| {
        let mut tier: ClaimsSourceConfig = toml::from_str(&format!(
            "id = \"tier\"\nurl = \"{plain_url}\"\ncache_secs = 0\n[claims]\ntier = \"/tier\"\n"
        ))
        .unwrap();
        tier.cache_secs = 0;
        c.claims_source = vec![
            source(
                &game_url,
                &format!("cache_secs = 0\nresources = [{GAME:?}]"),
            ),
            tier,
        ];
    })
    .await;

    // A resource no source names: invalid_target, and the code stays usable.
    let code = code(&h).await;
    assert_oauth_error(
        redeem(&h, &code, Some("https://other.test/")).await,
        400,
        "invalid_target",
    )
    .await;
    assert_oauth_error(redeem(&h, &code, Some("eu-1")).await, 400, "invalid_target").await;
    let eu = format!("{GAME}eu-1");
    let issued = tokens(redeem(&h, &code, Some(&eu)).await).await;
    let at = access_claims(&issued);
    assert_eq!(at["aud"], json!(eu));
    assert_eq!(at["entitlements"], json!(["join:eu-1"]));
    assert!(at.get("tier").is_none(), "{at}");
    assert_eq!(game.seen()[0].json()["resource"], json!(eu));
    assert!(plain.seen().is_empty());

    // A token for the game server is not a token for this server's own endpoints.
    let userinfo = h
        .client
        .get(h.url("/userinfo"))
        .bearer_auth(issued["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);

    // A refresh without a resource keeps the family's; naming this server comes home.
    let kept = tokens(refresh(&h, issued["refresh_token"].as_str().unwrap(), None).await).await;
    assert_eq!(access_claims(&kept)["aud"], json!(eu));
    let home =
        tokens(refresh(&h, kept["refresh_token"].as_str().unwrap(), Some(&h.base)).await).await;
    let at = access_claims(&home);
    assert_eq!(at["aud"], json!(h.base));
    assert_eq!(at["tier"], "gold");
    assert!(at.get("entitlements").is_none(), "{at}");
    assert_eq!((game.seen().len(), plain.seen().len()), (2, 1));
}

#[tokio::test]
async fn a_hundred_simultaneous_refreshes_ask_the_source_once() {
    let service = OwnService::start(permissions(&["play"])).await;
    let url = service.url("/permissions");
    let h = Harness::start_with(|c| c.claims_source = vec![source(&url, "cache_secs = 60")]).await;
    let mut refresh_tokens = Vec::new();
    for _ in 0..100 {
        let issued = tokens(redeem(&h, &code(&h).await, None).await).await;
        refresh_tokens.push(issued["refresh_token"].as_str().unwrap().to_owned());
    }
    // The 100 logins asked one question, kept for a minute.
    assert_eq!(service.seen().len(), 1);

    // A minute later the answer is stale; the service holds the next question until the test
    // has seen it arrive, while a hundred refreshes need the answer at once.
    h.clock.advance(61);
    service.answer(Answer::Hold(json!({"permissions": ["play", "build"]})));
    let h = std::sync::Arc::new(h);
    let refreshes: Vec<_> = refresh_tokens
        .into_iter()
        .map(|token| {
            let h = h.clone();
            tokio::spawn(async move { tokens(refresh(&h, &token, None).await).await })
        })
        .collect();
    service.wait_for(2).await;
    service.release();
    for refreshed in refreshes {
        let refreshed = refreshed.await.unwrap();
        assert_eq!(
            access_claims(&refreshed)["entitlements"],
            json!(["play", "build"])
        );
    }
    assert_eq!(service.seen().len(), 2);
}

/// A resource that URL parsers resolve to another place than its text says — a backslash
/// (a path separator in http(s) URLs, WHATWG URL), a tab or newline (removed by parsers)
/// around dot segments — is refused as `invalid_target`, not issued as an audience under the
/// source's prefix; the code stays usable.
#[tokio::test]
async fn a_resource_escaping_its_prefix_through_parser_quirks_is_refused() {
    let game = OwnService::start(permissions(&["join"])).await;
    let url = game.url("/perms");
    let h = Harness::start_with(|c| {
        c.claims_source = vec![source(&url, &format!("resources = [{GAME:?}]"))]
    })
    .await;
    let code = code(&h).await;
    for escaping in [
        format!("{GAME}eu-1\\..\\..\\admin"),
        format!("{GAME}.\t./admin"),
        format!("{GAME}..\n/admin"),
        format!("{GAME}eu-1 "),
    ] {
        let parsed = url::Url::parse(&escaping).map(|u| u.to_string());
        assert_oauth_error(
            redeem(&h, &code, Some(&escaping)).await,
            400,
            "invalid_target",
        )
        .await;
        assert!(game.seen().is_empty(), "{escaping:?} ({parsed:?}) asked");
    }
    let issued = tokens(redeem(&h, &code, Some(&format!("{GAME}eu-1"))).await).await;
    assert_eq!(access_claims(&issued)["aud"], json!(format!("{GAME}eu-1")));
}
