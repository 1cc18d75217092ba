//! The OpenID Provider over HTTPS: discovery, PKCE login, the `claims` echo in the ID token,
//! user claims without a value left out, DPoP-bound tokens at `/userinfo`, `iss` in every
//! authorization response, and every refused authorization or token request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::dpop::DpopClaims;
use proto::jwk::JwkSet;
use proto::jws::UnverifiedJws;
use serde_json::Value;

#[tokio::test]
async fn discovery_login_and_id_token_claims_echo() {
    let h = Harness::start().await;
    let meta = h.get_json("/.well-known/openid-configuration").await;
    assert_eq!(meta["issuer"], h.base.as_str());
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let oauth = h.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(oauth, meta);

    let page = h
        .client
        .get(h.url("/authorize"))
        .query(&authorize_params(&Pkce::new()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(r#"name="password""#));

    let pkce = Pkce::new();
    let mut params = authorize_params(&pkce);
    let claims = r#"{"id_token":{"keyauth":{"essential":true,"value":"tok.thumb"},"acme_aud":{"essential":true,"value":"https://acme.test/chal/1"}}}"#;
    params.push(("claims", claims.into()));
    let wrong = h.authorize(&params, "alice_wire", "not the password").await;
    assert_eq!(wrong.status(), 401);
    let response = h.authorize(&params, "alice_wire", &h.password).await;
    assert_eq!(response.status(), 303);
    let redirect = location_params(&response);
    assert_eq!(redirect["state"], "st-1");
    assert_eq!(redirect["iss"], h.base.as_str());
    let tokens: Value = h
        .token_request(&token_form(&redirect["code"], &pkce.verifier), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["token_type"], "Bearer");

    let jwks = h.get_json("/jwks").await;
    let key = &JwkSet::from_json(&jwks).unwrap().keys[0];
    let id = UnverifiedJws::from_compact(tokens["id_token"].as_str().unwrap())
        .unwrap()
        .verify(key)
        .unwrap();
    let c = id.claims().unwrap();
    assert_eq!(c.string("iss").unwrap(), h.base);
    assert_eq!(c.string("aud").unwrap(), "wireapp");
    assert_eq!(c.string("nonce").unwrap(), "n-1");
    assert_eq!(c.string("keyauth").unwrap(), "tok.thumb");
    assert_eq!(c.string("acme_aud").unwrap(), "https://acme.test/chal/1");
    assert_eq!(c.string("name").unwrap(), "Alice Smith");
    assert_eq!(
        c.string("preferred_username").unwrap(),
        "alice_wire@wire.com"
    );

    let info: Value = h
        .client
        .get(h.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["handle"], "wireapp://%40alice_wire@wire.com");
}

#[tokio::test]
async fn dpop_bound_tokens_need_a_proof_with_ath() {
    let h = Harness::start().await;
    let key = account_key();
    let tokens = h.login(Some(&key)).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let at = tokens["access_token"].as_str().unwrap();
    let as_bearer = h
        .client
        .get(h.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(as_bearer.status(), 401);
    assert!(
        as_bearer.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP")
    );
    let ok = h.userinfo_with_proof(at, &key).await;
    assert_eq!(ok.status(), 200);
    let other = account_key();
    let wrong_key = h.userinfo_with_proof(at, &other).await;
    assert_eq!(wrong_key.status(), 401);
    // A replayed token-endpoint proof is refused.
    let pkce = Pkce::new();
    let code = location_params(
        &h.authorize(&authorize_params(&pkce), "alice_wire", &h.password)
            .await,
    )["code"]
        .clone();
    let proof = DpopClaims::new("POST", &h.url("/token"), h.now())
        .sign(&key)
        .unwrap();
    let first = h
        .token_request(&token_form(&code, &pkce.verifier), Some(proof.clone()))
        .await;
    assert_eq!(first.status(), 200);
    let pkce = Pkce::new();
    let code = location_params(
        &h.authorize(&authorize_params(&pkce), "alice_wire", &h.password)
            .await,
    )["code"]
        .clone();
    let replay = h
        .token_request(&token_form(&code, &pkce.verifier), Some(proof))
        .await;
    assert_eq!(replay.status(), 400);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "invalid_dpop_proof"
    );
}

#[tokio::test]
async fn refused_authorization_requests() {
    let h = Harness::start().await;
    let pkce = Pkce::new();
    let with = |k: &'static str, v: Option<&str>| {
        let mut p: Vec<(&str, String)> = authorize_params(&pkce)
            .into_iter()
            .filter(|(n, _)| *n != k)
            .collect();
        if let Some(v) = v {
            p.push((k, v.into()));
        }
        p
    };
    // Untrustworthy client or redirect: an error page, never a redirect.
    for params in [
        with("client_id", Some("nobody")),
        with("redirect_uri", Some("https://evil.test/cb")),
        with("client_id", None),
    ] {
        let r = h.authorize(&params, "alice_wire", &h.password).await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
    }
    // Everything else: back to the client with an OAuth error, no code.
    for (params, error) in [
        (with("code_challenge", None), "invalid_request"),
        (
            with("code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (with("code_challenge_method", None), "invalid_request"),
        (
            with("response_type", Some("token")),
            "unsupported_response_type",
        ),
        (with("scope", Some("openid a\\b")), "invalid_scope"),
        (with("claims", Some("{not json")), "invalid_request"),
    ] {
        let r = h.authorize(&params, "alice_wire", &h.password).await;
        assert_eq!(r.status(), 303);
        let q = location_params(&r);
        assert_eq!(q["error"], error);
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["iss"], h.base.as_str());
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn claims_without_a_value_are_left_out_not_null() {
    // OIDC Core §5.3.2: a claim without a value is omitted. `bob` has no team.
    let h = Harness::start_seeded(|_| {}, |store| add_user(store, "bob", "bob password")).await;
    let (id, info) = h
        .claims_of_login("wireapp", "openid profile", "bob", "bob password")
        .await;
    for (what, claims) in [("ID token", &id), ("userinfo", &info)] {
        assert!(
            claims.values().all(|v| !v.is_null()),
            "{what} has a null claim: {claims:?}"
        );
        assert!(!claims.contains_key("team"), "{what}: {claims:?}");
        assert_eq!(claims["preferred_username"], "bob@wire.com", "{what}");
    }
    // Alice has a team: it is there.
    let (id, info) = h
        .claims_of_login("wireapp", "openid profile", "alice_wire", &h.password)
        .await;
    assert_eq!(id["team"], "wire");
    assert_eq!(info["team"], "wire");
}

#[tokio::test]
async fn every_authorization_response_carries_iss_errors_too() {
    let h = Harness::start().await;
    let pkce = Pkce::new();
    // RFC 9207 §2: `iss` in error responses as in successful ones; clients that check it
    // (openid-client, oauth4webapi) otherwise report a missing `iss` instead of the error.
    let mut unregistered = params_for(&pkce, "demo-webapp", &format!("openid {DEVICE_SCOPE}"));
    unregistered.retain(|(k, _)| *k != "nonce");
    let mut no_pkce = authorize_params(&pkce);
    no_pkce.retain(|(k, _)| *k != "code_challenge");
    for (params, error) in [
        (unregistered, "invalid_scope"),
        (no_pkce, "invalid_request"),
    ] {
        // Both the form page (GET) and the credentials post answer with the redirect.
        let shown = h
            .client
            .get(h.url("/authorize"))
            .query(&params)
            .send()
            .await
            .unwrap();
        let posted = h.authorize(&params, "alice_wire", &h.password).await;
        for response in [shown, posted] {
            assert_eq!(response.status(), 303);
            let q = location_params(&response);
            assert_eq!(q["error"], error);
            assert_eq!(q["iss"], h.base.as_str(), "{q:?}");
            assert_eq!(q["state"], "st-1");
        }
    }
    // A denied consent, and a code.
    let response = h
        .authorize(
            &params_for(&pkce, "demo-webapp", "openid"),
            "alice_wire",
            &h.password,
        )
        .await;
    let page = response.text().await.unwrap();
    let denied = location_params(&h.answer_consent(&ticket_of(&page), "deny").await);
    assert_eq!(denied["error"], "access_denied");
    assert_eq!(denied["iss"], h.base.as_str());
    let code = h
        .authorize(&authorize_params(&pkce), "alice_wire", &h.password)
        .await;
    assert_eq!(location_params(&code)["iss"], h.base.as_str());
}

#[tokio::test]
async fn request_objects_and_other_response_modes_are_refused_not_ignored() {
    let h = Harness::start().await;
    let meta = h.get_json("/.well-known/openid-configuration").await;
    assert_eq!(meta["request_parameter_supported"], false);
    assert_eq!(meta["request_uri_parameter_supported"], false);
    assert_eq!(
        meta["response_modes_supported"],
        serde_json::json!(["query"])
    );
    let pkce = Pkce::new();
    let with = |k: &'static str, v: &str| {
        let mut p = authorize_params(&pkce);
        p.push((k, v.into()));
        p
    };
    // OIDC Core §6.1/§6.2 and RFC 9101 §6.3 name the errors; a response mode we do not have is
    // an invalid request. Honoured silently, each would change what the client asked for.
    for (params, error) in [
        (
            with("request", "eyJhbGciOiJub25lIn0.e30."),
            "request_not_supported",
        ),
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:abc"),
            "request_uri_not_supported",
        ),
        (with("response_mode", "form_post"), "invalid_request"),
        (with("response_mode", "fragment"), "invalid_request"),
    ] {
        let r = h.authorize(&params, "alice_wire", &h.password).await;
        assert_eq!(r.status(), 303);
        let q = location_params(&r);
        assert_eq!(q["error"], error, "{q:?}");
        assert!(!q.contains_key("code"), "{q:?}");
        assert_eq!(q["state"], "st-1");
    }
    // The one response mode, named explicitly, is fine.
    let r = h
        .authorize(&with("response_mode", "query"), "alice_wire", &h.password)
        .await;
    assert!(location_params(&r).contains_key("code"));
}

#[tokio::test]
async fn refused_token_requests_and_code_reuse_revokes() {
    let h = Harness::start().await;
    let new_code = || async {
        let pkce = Pkce::new();
        let r = h
            .authorize(&authorize_params(&pkce), "alice_wire", &h.password)
            .await;
        (location_params(&r)["code"].clone(), pkce.verifier)
    };
    let error_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert!(body.get("access_token").is_none());
        (status, body["error"].as_str().unwrap().to_owned())
    };

    let (code, _) = new_code().await;
    let wrong = "x".repeat(43);
    assert_eq!(
        error_of(h.token_request(&token_form(&code, &wrong), None).await).await,
        (400, "invalid_grant".into())
    );
    let (code, verifier) = new_code().await;
    let mut no_verifier = token_form(&code, &verifier);
    no_verifier.retain(|(k, _)| *k != "code_verifier");
    assert_eq!(
        error_of(h.token_request(&no_verifier, None).await).await,
        (400, "invalid_request".into())
    );
    let mut other_redirect = token_form(&code, &verifier);
    other_redirect[2].1 = "http://127.0.0.1:4711/other".into();
    assert_eq!(
        error_of(h.token_request(&other_redirect, None).await).await,
        (400, "invalid_grant".into())
    );
    let mut unknown_client = token_form(&code, &verifier);
    unknown_client[3].1 = "nobody".into();
    assert_eq!(
        error_of(h.token_request(&unknown_client, None).await).await,
        (401, "invalid_client".into())
    );
    assert_eq!(
        error_of(
            h.token_request(&token_form("no-such-code", &verifier), None)
                .await
        )
        .await,
        (400, "invalid_grant".into())
    );

    // Code reuse: the second use fails and the first use's token stops working.
    let (code, verifier) = new_code().await;
    let first: Value = h
        .token_request(&token_form(&code, &verifier), None)
        .await
        .json()
        .await
        .unwrap();
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(
        h.client
            .get(h.url("/userinfo"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        error_of(h.token_request(&token_form(&code, &verifier), None).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        h.client
            .get(h.url("/userinfo"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // An expired code.
    let (code, verifier) = new_code().await;
    h.clock.advance(61);
    assert_eq!(
        error_of(h.token_request(&token_form(&code, &verifier), None).await).await,
        (400, "invalid_grant".into())
    );
}
