//! Refresh tokens (rotation, reuse revokes the family, DPoP binding), client credentials for
//! confidential clients, `private_key_jwt` assertions (lifetime, single use), introspection and
//! revocation, unsupported grant types — over HTTPS against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::dpop::DpopClaims;
use serde_json::Value;

fn refresh_form(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", token.into()),
        ("client_id", "wireapp".into()),
    ]
}

fn service_secret(h: &Harness) -> String {
    std::fs::read_to_string(h.dir.path().join("demo-service-secret")).unwrap()
}

async fn oauth_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
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

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let h = Harness::start().await;
    let tokens = h.login(None).await;
    let first_rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let first_at = tokens["access_token"].as_str().unwrap().to_owned();

    let response = h.token_request(&refresh_form(&first_rt), None).await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let second_rt = rotated["refresh_token"].as_str().unwrap().to_owned();
    let second_at = rotated["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second_rt, first_rt);
    assert_eq!(rotated["token_type"], "Bearer");
    assert_eq!(userinfo_status(&h, &second_at).await, 200);

    // The used token again: refused, and the whole family with its access tokens revoked.
    oauth_error(
        h.token_request(&refresh_form(&first_rt), None).await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        h.token_request(&refresh_form(&second_rt), None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(userinfo_status(&h, &second_at).await, 401);
    assert_eq!(userinfo_status(&h, &first_at).await, 401);
}

#[tokio::test]
async fn a_dpop_bound_refresh_token_needs_its_key_and_is_not_burnt_by_a_thief() {
    let h = Harness::start().await;
    let key = account_key();
    let tokens = h.login(Some(&key)).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let proof = |k: &proto::jws::SigningKey| {
        DpopClaims::new("POST", &h.url("/token"), h.now())
            .sign(k)
            .unwrap()
    };
    let thief = account_key();
    let response = h
        .token_request(&refresh_form(&rt), Some(proof(&thief)))
        .await;
    oauth_error(response, 400, "invalid_dpop_proof").await;
    let response = h.token_request(&refresh_form(&rt), None).await;
    oauth_error(response, 400, "invalid_dpop_proof").await;

    let response = h.token_request(&refresh_form(&rt), Some(proof(&key))).await;
    assert_eq!(
        response.status(),
        200,
        "the holder still can: {:?}",
        response.text().await
    );
    let rotated: Value = response.json().await.unwrap();
    assert_eq!(rotated["token_type"], "DPoP");
    let at = rotated["access_token"].as_str().unwrap();
    assert_eq!(h.userinfo_with_proof(at, &key).await.status(), 200);
}

#[tokio::test]
async fn an_oversized_token_request_is_an_oauth_error_with_413() {
    let h = Harness::start().await;
    let response = h
        .client
        .post(h.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&scope={}",
            "a".repeat(65 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("larger than 65536 bytes")
    );
}

#[tokio::test]
async fn client_credentials_for_confidential_clients_only() {
    let h = Harness::start().await;
    let secret = service_secret(&h);
    let form = vec![
        ("grant_type", "client_credentials".to_owned()),
        ("scope", "api".into()),
    ];

    let response = h
        .client
        .post(h.url("/token"))
        .basic_auth("demo-service", Some(&secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "api");
    assert!(body.get("refresh_token").is_none());

    let mut post = form.clone();
    post.push(("client_id", "demo-service".into()));
    post.push(("client_secret", secret.clone()));
    let key = account_key();
    let proof = DpopClaims::new("POST", &h.url("/token"), h.now())
        .sign(&key)
        .unwrap();
    let response = h.token_request(&post, Some(proof)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");

    let response = h
        .client
        .post(h.url("/token"))
        .basic_auth("demo-service", Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("www-authenticate").is_some());
    oauth_error(response, 401, "invalid_client").await;

    let mut public = form.clone();
    public.push(("client_id", "wireapp".into()));
    oauth_error(
        h.token_request(&public, None).await,
        400,
        "unauthorized_client",
    )
    .await;
    let mut no_secret = form.clone();
    no_secret.push(("client_id", "demo-service".into()));
    oauth_error(
        h.token_request(&no_secret, None).await,
        401,
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn introspection_and_revocation() {
    let h = Harness::start().await;
    let secret = service_secret(&h);
    let key = account_key();
    let tokens = h.login(Some(&key)).await;
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let introspect = |token: String| {
        let (client, url, secret) = (h.client.clone(), h.url("/introspect"), secret.clone());
        async move {
            let r = client
                .post(url)
                .basic_auth("demo-service", Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let info = introspect(at.clone()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "DPoP");
    assert_eq!(info["cnf"]["jkt"], key.public_jwk().thumbprint());
    assert_eq!(info["client_id"], "wireapp");
    let info = introspect(rt.clone()).await;
    assert_eq!(info["token_type"], "refresh_token");
    // RFC 7662 §2.2 names the RFC 6749 §5.1 token type: an unbound token is a Bearer token.
    let bearer = h.bearer_login().await;
    let info = introspect(bearer).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "Bearer", "{info}");
    assert!(info.get("cnf").is_none());
    assert_eq!(introspect("garbage".into()).await["active"], false);

    // Public clients may not introspect.
    let response = h
        .client
        .post(h.url("/introspect"))
        .form(&[("token", at.as_str()), ("client_id", "wireapp")])
        .send()
        .await
        .unwrap();
    oauth_error(response, 401, "invalid_client").await;

    // The public client revokes its own tokens.
    for token in [&at, &rt] {
        let response = h
            .client
            .post(h.url("/revoke"))
            .form(&[("token", token.as_str()), ("client_id", "wireapp")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(introspect(at.clone()).await["active"], false);
    assert_eq!(introspect(rt.clone()).await["active"], false);
    assert_eq!(h.userinfo_with_proof(&at, &key).await.status(), 401);
}

/// The `private_key_jwt` key of the seeded `demo-jwt-service`, named by its thumbprint.
fn jwt_service_key(h: &Harness) -> proto::jws::SigningKey {
    let der = std::fs::read(h.dir.path().join("demo-jwt-service-key.der")).unwrap();
    let key = proto::jws::SigningKey::from_pkcs8_der(proto::jws::Algorithm::Es256, &der).unwrap();
    let kid = key.public_jwk().thumbprint();
    key.with_kid(kid)
}

/// A client assertion of `demo-jwt-service` (RFC 7523 §3) for `aud`, expiring at `exp`.
fn client_assertion(h: &Harness, signer: &proto::jws::SigningKey, aud: &str, exp: i64) -> String {
    let claims = serde_json::json!({
        "iss": "demo-jwt-service", "sub": "demo-jwt-service", "aud": aud,
        "exp": exp, "iat": h.now(), "jti": proto::random::uuid_v4(),
    });
    signer
        .sign_jwt("JWT", false, claims.as_object().unwrap())
        .unwrap()
}

/// A client credentials request authenticated by `assertion`.
async fn assertion_request(h: &Harness, assertion: String) -> reqwest::Response {
    let form = vec![
        ("grant_type", "client_credentials".to_owned()),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ),
        ("client_assertion", assertion),
    ];
    h.token_request(&form, None).await
}

#[tokio::test]
async fn private_key_jwt_client_assertions_are_checked_and_used_once() {
    let h = Harness::start().await;
    let key = jwt_service_key(&h);
    let assertion = |signer: &proto::jws::SigningKey, aud: &str, exp: i64| {
        client_assertion(&h, signer, aud, exp)
    };
    let h = &h;
    let request = |assertion: String| assertion_request(h, assertion);
    let token_url = h.url("/token");
    let good = assertion(&key, &token_url, h.now() + 60);
    assert_eq!(request(good.clone()).await.status(), 200);
    oauth_error(request(good).await, 401, "invalid_client").await;
    oauth_error(
        request(assertion(&key, "https://elsewhere.test", h.now() + 60)).await,
        401,
        "invalid_client",
    )
    .await;
    oauth_error(
        request(assertion(&key, &token_url, h.now() - 1)).await,
        401,
        "invalid_client",
    )
    .await;
    // Further ahead than `lifetimes.max_client_assertion_exp` (3600 s) and 60 s of skew.
    oauth_error(
        request(assertion(&key, &token_url, h.now() + 3661)).await,
        401,
        "invalid_client",
    )
    .await;
    let stranger = proto::jws::SigningKey::generate(proto::jws::Algorithm::Es256)
        .unwrap()
        .with_kid(key.public_jwk().kid.clone().unwrap());
    oauth_error(
        request(assertion(&stranger, &token_url, h.now() + 60)).await,
        401,
        "invalid_client",
    )
    .await;
    // The issuer URL is an accepted audience too.
    assert_eq!(
        request(assertion(&key, &h.base, h.now() + 60))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn failed_logins_and_token_requests_are_rate_limited_with_retry_after() {
    use server_kit::rate_limit::Rate;
    let h = Harness::start_with(|c| {
        c.rate_limits.failed_logins_per_user = Rate::new(1, 3);
        c.rate_limits.token_requests_per_client = Rate::new(1, 2);
    })
    .await;
    let params = authorize_params(&Pkce::new());

    // Three wrong passwords for alice pass as 401s; the fourth attempt is refused before the
    // password is checked, even with the right password.
    for _ in 0..3 {
        let r = h.authorize(&params, "alice_wire", "wrong").await;
        assert_eq!(r.status(), 401);
    }
    let limited = h.authorize(&params, "alice_wire", &h.password).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "60");
    assert!(
        limited
            .text()
            .await
            .unwrap()
            .contains("too many failed or unfinished logins for this user")
    );
    // Another user is not affected by alice's failures (per-IP budget is larger).
    let other = h.authorize(&params, "nobody", "wrong").await;
    assert_eq!(other.status(), 401);

    // Token requests per client: two pass, the third is 429 with the OAuth error body.
    let secret = service_secret(&h);
    let request = || {
        h.client
            .post(h.url("/token"))
            .basic_auth("demo-service", Some(&secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "api")])
            .send()
    };
    for _ in 0..2 {
        assert_eq!(request().await.unwrap().status(), 200);
    }
    let limited = request().await.unwrap();
    assert_eq!(limited.headers()["retry-after"], "60");
    oauth_error(limited, 429, "temporarily_unavailable").await;
}

#[tokio::test]
async fn failed_logins_from_one_address_are_limited_across_users() {
    use server_kit::rate_limit::Rate;
    let h = Harness::start_with(|c| {
        c.rate_limits.failed_logins_per_ip = Rate::new(1, 2);
    })
    .await;
    let params = authorize_params(&Pkce::new());
    assert_eq!(h.authorize(&params, "u1", "x").await.status(), 401);
    assert_eq!(h.authorize(&params, "u2", "x").await.status(), 401);
    let limited = h.authorize(&params, "u3", "x").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn an_hour_long_client_assertion_is_accepted_once_and_remembered_until_it_expires() {
    let h = Harness::start_with(|c| {
        c.cleanup.interval_secs = 1;
        c.cleanup.keep_expired_secs = 0;
    })
    .await;
    let key = jwt_service_key(&h);
    // Authlib signs its assertions for 3600 s; RFC 7523 sets no cap.
    let hour_long = client_assertion(&h, &key, &h.url("/token"), h.now() + 3600);
    let response = assertion_request(&h, hour_long.clone()).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    // Fifty-nine minutes later, after sweeps that remove what expired, the assertion is still
    // unexpired, and its jti is still remembered: no second token.
    h.clock.advance(59 * 60);
    let mut passes = h.server.as_ref().unwrap().cleanup_passes().unwrap();
    let seen = *passes.borrow_and_update();
    passes.wait_for(|n| *n >= seen + 2).await.unwrap();
    oauth_error(
        assertion_request(&h, hour_long.clone()).await,
        401,
        "invalid_client",
    )
    .await;
    // Once it has expired it is refused as expired.
    h.clock.advance(61);
    let response = assertion_request(&h, hour_long).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn an_unsupported_grant_type_names_every_supported_one() {
    let h = Harness::start().await;
    let response = h
        .token_request(
            &[
                ("grant_type", "password".to_owned()),
                ("client_id", "wireapp".into()),
            ],
            None,
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
    let description = body["error_description"].as_str().unwrap();
    let metadata = h.get_json("/.well-known/openid-configuration").await;
    for grant in metadata["grant_types_supported"].as_array().unwrap() {
        let grant = grant.as_str().unwrap();
        assert!(
            description.contains(grant),
            "{grant} not in {description:?}"
        );
    }
    assert!(description.contains("urn:ietf:params:oauth:grant-type:device_code"));
}
