//! Who may use the Wire device endpoints, and which scopes a client can be granted — over HTTPS
//! against the real server: the device endpoints need the device scope and (by default) a
//! first-party client, refused with 403 `insufficient_scope` (RFC 6750 §3.1); a third-party
//! client gets the device scope only when the user consents to it; no grant gives a client a
//! scope outside its registered list (`invalid_scope`, RFC 6749 §5.2), while `/authorize`
//! ignores scope values it does not support at all (OIDC Core §3.1.2.1). The OpenID Connect
//! scopes mainstream libraries ask for by default (`openid email profile`) work, `email`
//! releases only an address an operator recorded, and `offline_access` decides whether a
//! third-party client gets a refresh token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authz_server::oauth_clients::OAuthClient;
use common::*;
use proto::dpop::DpopClaims;
use serde_json::Value;

/// A third-party public client that may ask for the device scope.
const PARTNER: &str = "partner-app";
const DEVICE_CONSENT: &str = "Register devices and get device certificates in your name";

fn seed_partner(store: &dyn authz_server::store::Store) {
    authz_server::oauth_clients::add(
        store,
        &OAuthClient {
            id: PARTNER.into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            secret_sha256: None,
            consent_required: true,
            jwks: None,
            scopes: Some(vec!["openid".into(), "profile".into(), DEVICE_SCOPE.into()]),
            post_logout_redirect_uris: Vec::new(),
            token_exchange: Vec::new(),
            remote_auth: Vec::new(),
            jwt_bearer: Vec::new(),
        },
    )
    .unwrap();
}

fn token_of(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// Asserts a 403 `insufficient_scope` naming the device scope, in both body shapes, with the
/// `WWW-Authenticate` challenge of `scheme`.
async fn assert_insufficient(response: reqwest::Response, scheme: &str, label: &str) {
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(&format!("{scheme} error=\"insufficient_scope\"")),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("scope=\"{DEVICE_SCOPE}\"")),
        "{challenge}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope", "{body}");
    assert_eq!(body["label"], label, "{body}");
    assert_eq!(body["code"], 403);
    assert!(body.get("token").is_none() && body.get("id").is_none());
}

/// Every device endpoint with `token` as a bearer token: register, list, nonce (GET, for a body
/// to check), access token (with a proof that would pass) and delete.
async fn device_requests(
    h: &Harness,
    token: &str,
    device: &str,
    proof: &str,
) -> Vec<reqwest::Response> {
    let clients = h.url("/clients");
    let one = h.url(&format!("/clients/{device}"));
    vec![
        h.client
            .post(&clients)
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
        h.client
            .get(&clients)
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
        h.client
            .get(format!("{one}/nonce"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
        h.access_token(token, device, proof).await,
        h.client
            .delete(&one)
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    ]
}

async fn device_count(h: &Harness, token: &str) -> usize {
    let listed: Value = h
        .client
        .get(h.url("/clients"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed.as_array().unwrap().len()
}

#[tokio::test]
async fn the_device_endpoints_need_the_device_scope_and_a_first_party_client() {
    let h = Harness::start().await;
    let owner = h.bearer_login().await;
    let (device, client_id) = h.register_device(&owner).await;
    let nonce = h.nonce(&owner, &device).await;
    let proof = h
        .wire_proof_claims(&device, &client_id, &nonce)
        .sign(&account_key())
        .unwrap();

    // A third-party app the user allowed to "know who you are", and the Wire app itself
    // logged in without the device scope.
    let webapp = token_of(
        &h.login_as("demo-webapp", "openid", "alice_wire", &h.password)
            .await,
    );
    let narrow = token_of(
        &h.login_as("wireapp", "openid profile", "alice_wire", &h.password)
            .await,
    );
    for token in [&webapp, &narrow] {
        for response in device_requests(&h, token, &device, &proof).await {
            assert_insufficient(response, "Bearer", "insufficient-scope").await;
        }
    }

    // A DPoP-bound token without the scope gets the DPoP challenge.
    let key = account_key();
    let pkce = Pkce::new();
    let response = h
        .authorize(
            &params_for(&pkce, "wireapp", "openid profile"),
            "alice_wire",
            &h.password,
        )
        .await;
    let code = location_params(&response)["code"].clone();
    let token_proof = DpopClaims::new("POST", &h.url("/token"), h.now())
        .sign(&key)
        .unwrap();
    let bound = h
        .token_request(&token_form(&code, &pkce.verifier), Some(token_proof))
        .await;
    let bound = token_of(&bound.json().await.unwrap());
    let list_proof = DpopClaims::new("GET", &h.url("/clients"), h.now())
        .with_access_token(&bound)
        .sign(&key)
        .unwrap();
    let response = h
        .client
        .get(h.url("/clients"))
        .header("Authorization", format!("DPoP {bound}"))
        .header("DPoP", list_proof)
        .send()
        .await
        .unwrap();
    assert_insufficient(response, "DPoP", "insufficient-scope").await;

    // None of the refusals changed anything: one device, and its nonce is still good.
    assert_eq!(device_count(&h, &owner).await, 1);
    assert_eq!(h.access_token(&owner, &device, &proof).await.status(), 200);
}

#[tokio::test]
async fn a_third_party_client_needs_explicit_consent_and_is_still_refused_by_default() {
    let h = Harness::start_seeded(|_| {}, seed_partner).await;
    // Consent to the identity scopes does not cover the device scope.
    h.login_as(PARTNER, "openid profile", "alice_wire", &h.password)
        .await;
    let pkce = Pkce::new();
    let scope = format!("openid profile {DEVICE_SCOPE}");
    let response = h
        .authorize(
            &params_for(&pkce, PARTNER, &scope),
            "alice_wire",
            &h.password,
        )
        .await;
    assert_eq!(response.status(), 200, "the consent page, not a code");
    let page = response.text().await.unwrap();
    assert!(page.contains(DEVICE_CONSENT), "{page}");
    let denied = h.answer_consent(&ticket_of(&page), "deny").await;
    assert_eq!(location_params(&denied)["error"], "access_denied");

    // Allowed explicitly: the token carries the scope, yet the device endpoints accept only
    // first-party clients (`device_access.first_party_only`, on by default).
    let tokens = h.login_as(PARTNER, &scope, "alice_wire", &h.password).await;
    assert_eq!(tokens["scope"], scope.as_str());
    let response = h
        .client
        .post(h.url("/clients"))
        .bearer_auth(token_of(&tokens))
        .send()
        .await
        .unwrap();
    assert_insufficient(response, "Bearer", "first-party-client-required").await;
    assert_eq!(device_count(&h, &h.bearer_login().await).await, 0);
}

#[tokio::test]
async fn with_third_party_clients_allowed_the_consented_device_scope_works() {
    let h = Harness::start_seeded(|c| c.device_access.first_party_only = false, seed_partner).await;
    let scope = format!("openid {DEVICE_SCOPE}");
    let tokens = h.login_as(PARTNER, &scope, "alice_wire", &h.password).await;
    let (device, _) = h.register_device(&token_of(&tokens)).await;
    assert_eq!(device_count(&h, &token_of(&tokens)).await, 1);
    assert!(!device.is_empty());
}

#[tokio::test]
async fn the_device_page_shows_a_third_party_clients_scopes_before_it_approves() {
    let h = Harness::start_seeded(|c| c.device_access.first_party_only = false, seed_partner).await;
    let scope = format!("openid {DEVICE_SCOPE}");
    let codes: Value = h
        .client
        .post(h.url("/device_authorization"))
        .form(&[("client_id", PARTNER), ("scope", &scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_code = codes["user_code"].as_str().unwrap();
    let device_code = codes["device_code"].as_str().unwrap();
    let poll = || async {
        let form = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:device_code".to_owned(),
            ),
            ("device_code", device_code.to_owned()),
            ("client_id", PARTNER.to_owned()),
        ];
        let response = h.token_request(&form, None).await;
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };

    // The page opened from the device's link lists what the client asks for.
    let page = h
        .client
        .get(codes["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(DEVICE_CONSENT) && page.contains(PARTNER),
        "{page}"
    );

    // An approval from a form that did not show these scopes is not an approval.
    let decide = |shown: Option<&str>| {
        let mut form = vec![
            ("user_code", user_code.to_owned()),
            ("username", "alice_wire".to_owned()),
            ("password", h.password.clone()),
            ("action", "approve".to_owned()),
        ];
        if let Some(shown) = shown {
            form.push(("scope", shown.to_owned()));
        }
        h.client.post(h.url("/device")).form(&form).send()
    };
    let response = decide(None).await.unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(
        page.contains(DEVICE_CONSENT) && !page.contains("connected"),
        "{page}"
    );
    let response = decide(Some("openid")).await.unwrap();
    assert!(!response.text().await.unwrap().contains("connected"));
    assert_eq!(poll().await.1["error"], "authorization_pending");

    let response = decide(Some(&scope)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("connected"));
    h.clock.advance(6);
    let (status, tokens) = poll().await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], scope.as_str());
    h.register_device(&token_of(&tokens)).await;
}

#[tokio::test]
async fn no_grant_gives_a_client_a_scope_outside_its_list() {
    let h = Harness::start().await;
    let secret = std::fs::read_to_string(h.dir.path().join("demo-service-secret")).unwrap();
    let client_credentials = |scope: &'static str| {
        h.client
            .post(h.url("/token"))
            .basic_auth("demo-service", Some(&secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
    };
    for scope in ["admin root", "api admin", DEVICE_SCOPE, "api\u{7f}"] {
        let response = client_credentials(scope).await.unwrap();
        assert_eq!(response.status(), 400, "{scope}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_scope", "{scope}: {body}");
        assert!(body.get("access_token").is_none());
    }
    let granted: Value = client_credentials("api")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(granted["scope"], "api");
    // A token without `openid` (here: no user at all) gets no user info, and is told why.
    let userinfo = h
        .client
        .get(h.url("/userinfo"))
        .bearer_auth(token_of(&granted))
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 403);
    let challenge = userinfo.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("scope=\"openid\""), "{challenge}");
    let body: Value = userinfo.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope", "{body}");

    // The device grant: only the client's scopes.
    let device_authorization = |scope: &'static str| {
        h.client
            .post(h.url("/device_authorization"))
            .form(&[("client_id", "wireapp"), ("scope", scope)])
            .send()
    };
    let refused = device_authorization("openid admin").await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope", "{body}");
    assert!(body.get("device_code").is_none());
    assert_eq!(
        device_authorization("openid profile")
            .await
            .unwrap()
            .status(),
        200
    );

    // The authorization endpoint: the third-party demo app may not even ask for the device
    // scope (not in its list), so no consent page and no code.
    let pkce = Pkce::new();
    let scope = format!("openid {DEVICE_SCOPE}");
    let response = h
        .authorize(
            &params_for(&pkce, "demo-webapp", &scope),
            "alice_wire",
            &h.password,
        )
        .await;
    assert_eq!(response.status(), 303);
    let q = location_params(&response);
    assert_eq!(q["error"], "invalid_scope");
    assert!(!q.contains_key("code"));

    // The scope is advertised.
    let metadata = h.get_json("/.well-known/openid-configuration").await;
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == DEVICE_SCOPE)
    );
}

#[tokio::test]
async fn client_records_stored_without_a_scope_list_get_the_documented_default() {
    // Records as they were stored before clients had scope lists.
    let legacy = |store: &dyn authz_server::store::Store| {
        for (id, third_party) in [("legacy-app", false), ("legacy-partner", true)] {
            let record = serde_json::json!({
                "id": id,
                "redirect_uris": ["http://127.0.0.1/callback"],
                "secret_sha256": null,
                "consent_required": third_party,
                "jwks": null,
            });
            store
                .put(
                    authz_server::store::trees::CLIENTS,
                    id,
                    &serde_json::to_vec(&record).unwrap(),
                )
                .unwrap();
        }
    };
    let h = Harness::start_seeded(|_| {}, legacy).await;
    // Both take the scopes OpenID Connect libraries ask for by default, and offline_access.
    for client in ["legacy-app", "legacy-partner"] {
        let tokens = h
            .login_as(
                client,
                "openid email profile offline_access",
                "alice_wire",
                &h.password,
            )
            .await;
        assert_eq!(tokens["scope"], "openid email profile offline_access");
    }
    // The first-party one keeps working for the whole enrollment flow.
    let scope = format!("openid profile {DEVICE_SCOPE}");
    let tokens = h
        .login_as("legacy-app", &scope, "alice_wire", &h.password)
        .await;
    h.register_device(&token_of(&tokens)).await;
    // The third-party one keeps its identity scopes but cannot ask for the device scope.
    h.login_as(
        "legacy-partner",
        "openid profile",
        "alice_wire",
        &h.password,
    )
    .await;
    let response = h
        .authorize(
            &params_for(&Pkce::new(), "legacy-partner", &scope),
            "alice_wire",
            &h.password,
        )
        .await;
    assert_eq!(location_params(&response)["error"], "invalid_scope");
}

/// A third-party client registered for `openid` only.
const NARROW: &str = "narrow-app";

fn seed_narrow(store: &dyn authz_server::store::Store) {
    authz_server::oauth_clients::add(
        store,
        &OAuthClient {
            id: NARROW.into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            secret_sha256: None,
            consent_required: true,
            jwks: None,
            scopes: Some(vec!["openid".into()]),
            post_logout_redirect_uris: Vec::new(),
            token_exchange: Vec::new(),
            remote_auth: Vec::new(),
            jwt_bearer: Vec::new(),
        },
    )
    .unwrap();
}

#[tokio::test]
async fn authorize_ignores_unsupported_scopes_and_still_refuses_unregistered_ones() {
    let h = Harness::start_seeded(|_| {}, seed_narrow).await;
    // Values the server does not support at all are dropped; the rest is granted, and the
    // token response says what was (RFC 6749 §5.1).
    let tokens = h
        .login_as(
            "wireapp",
            "openid email profile calendar urn:example:read",
            "alice_wire",
            &h.password,
        )
        .await;
    assert_eq!(tokens["scope"], "openid email profile");
    let tokens = h
        .login_as(NARROW, "openid calendar", "alice_wire", &h.password)
        .await;
    assert_eq!(tokens["scope"], "openid");

    // A scope the server supports but did not register for the client stays refused, however
    // many unknown values come with it (issue 15's control).
    for scope in [
        "openid email",
        "openid offline_access calendar",
        &format!("openid {DEVICE_SCOPE}"),
    ] {
        let response = h
            .authorize(
                &params_for(&Pkce::new(), NARROW, scope),
                "alice_wire",
                &h.password,
            )
            .await;
        assert_eq!(response.status(), 303, "{scope}");
        let q = location_params(&response);
        assert_eq!(q["error"], "invalid_scope", "{scope}: {q:?}");
        assert!(!q.contains_key("code"));
    }

    let metadata = h.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        metadata["scopes_supported"],
        serde_json::json!([
            "openid",
            "profile",
            "email",
            "offline_access",
            "wire_client_id",
            "roles",
            "ga4gh_passport_v1",
            DEVICE_SCOPE
        ])
    );
}

#[tokio::test]
async fn the_email_scope_releases_only_an_address_an_operator_recorded() {
    let seed = |store: &dyn authz_server::store::Store| {
        let password = proto::secret::SecretString::new("carol password");
        authz_server::users::add_with_email(
            store,
            &authz_server::users::NewUser {
                handle: "carol",
                name: "Carol",
                team: None,
                domain: DOMAIN,
                password: &password,
            },
            Some(authz_server::users::Email::new("carol@example.com", true).unwrap()),
        )
        .unwrap();
        add_user(store, "dave", "dave password");
    };
    let h = Harness::start_seeded(|_| {}, seed).await;
    let (id, info) = h
        .claims_of_login("wireapp", "openid email", "carol", "carol password")
        .await;
    for claims in [&id, &info] {
        assert_eq!(claims["email"], "carol@example.com", "{claims:?}");
        assert_eq!(claims["email_verified"], true, "{claims:?}");
        // `email` alone releases no profile claims.
        assert!(!claims.contains_key("name"), "{claims:?}");
    }
    // Without the scope, no address; a user without one gets no email claims at all.
    let (id, info) = h
        .claims_of_login("wireapp", "openid profile", "carol", "carol password")
        .await;
    assert!(!id.contains_key("email") && !info.contains_key("email"));
    let (id, info) = h
        .claims_of_login("wireapp", "openid email profile", "dave", "dave password")
        .await;
    for claims in [&id, &info] {
        assert!(
            !claims.contains_key("email") && !claims.contains_key("email_verified"),
            "{claims:?}"
        );
        assert_eq!(claims["name"], "dave");
    }

    // The demo third-party client takes the library defaults; its users see what `email` means.
    let response = h
        .authorize(
            &params_for(&Pkce::new(), "demo-webapp", "openid email profile"),
            "alice_wire",
            &h.password,
        )
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("See your email address"), "{page}");
}

#[tokio::test]
async fn offline_access_decides_whether_a_third_party_client_gets_a_refresh_token() {
    let h = Harness::start().await;
    // The library defaults, allowed on the consent page: tokens, but no refresh token.
    let tokens = h
        .login_as(
            "demo-webapp",
            "openid email profile",
            "alice_wire",
            &h.password,
        )
        .await;
    assert!(tokens["access_token"].is_string() && tokens["id_token"].is_string());
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");

    // With offline_access the consent page asks to "Stay signed in", and a refresh token comes.
    let pkce = Pkce::new();
    let response = h
        .authorize(
            &params_for(&pkce, "demo-webapp", "openid offline_access"),
            "alice_wire",
            &h.password,
        )
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("Stay signed in"), "{page}");
    let response = h.answer_consent(&ticket_of(&page), "allow").await;
    let code = location_params(&response)["code"].clone();
    let tokens: Value = h
        .token_request(&token_form_for("demo-webapp", &code, &pkce.verifier), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["scope"], "openid offline_access");
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    let refreshed = h
        .token_request(
            &[
                ("grant_type", "refresh_token".into()),
                ("refresh_token", refresh_token.into()),
                ("client_id", "demo-webapp".into()),
            ],
            None,
        )
        .await;
    assert_eq!(refreshed.status(), 200);

    // A first-party client gets one without asking (docs/rfc-divergences.md, item 8).
    let tokens = h
        .login_as("wireapp", "openid", "alice_wire", &h.password)
        .await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
}
