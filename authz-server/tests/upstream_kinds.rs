//! The kinds of upstream and how we authenticate there, each against node-oidc-provider
//! (`tests/interop/upstream_idp.mjs`, see `common::upstream`): a GitHub-style `oauth2` upstream
//! read at its user-info endpoint (the provider used as plain OAuth 2.0, scopes without
//! `openid`, and a GitHub-shaped `GET /api/user` that checks the provider's own access tokens),
//! `private_key_jwt` and `client_secret_post` at the upstream's token endpoint (the provider's
//! client registered with only that method, so any other is refused there), and an `oidc`
//! upstream with `userinfo = true` whose userinfo-only claim fills the mapping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use common::upstream::*;
use common::*;
use proto::jws::{Algorithm, SigningKey};

/// An `oauth2` `[[upstream]]` for the provider at `issuer`: GitHub's claim names.
fn oauth2_upstream(issuer: &str, secret_file: &std::path::Path) -> String {
    format!(
        r#"
id = "corp"
display_name = "Corp <IdP>"
kind = "oauth2"
authorization_endpoint = "{issuer}/auth"
token_endpoint = "{issuer}/token"
userinfo_endpoint = "{issuer}/api/user"
client_id = "{UPSTREAM_CLIENT_ID}"
client_secret_file = "{}"
scopes = "read:user user:email"
first_login = "create"
[claims]
subject = "id"
handle = "login"
display_name = "name"
email = "email"
"#,
        secret_file.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth2_upstream_logs_a_user_in_from_its_github_style_user_info() {
    let setup = Setup {
        tamper: None,
        idp_env: Vec::new(),
        upstream: Box::new(oauth2_upstream),
    };
    let f = Federation::launch(setup, |_| {}, |_| {}).await;
    let pkce = Pkce::new();
    let at_upstream = f.to_upstream(&pkce).await;
    let query: std::collections::HashMap<String, String> = url::Url::parse(&at_upstream)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["scope"], "read:user user:email");
    assert!(!query.contains_key("nonce"), "{at_upstream}");
    assert_eq!(query["code_challenge_method"], "S256");
    let callback = f.upstream_login(at_upstream, "octo", false).await;
    let response = f.get(&callback).await;
    let id = f.tokens_of(&response, &pkce).await;
    assert_eq!(id["preferred_username"], format!("octo@{DOMAIN}"));
    assert_eq!(id["name"], "Upstream octo");
    assert_eq!(id["email"], "octo@corp.example");
    // No email_verified at the user-info endpoint: the address counts as unverified.
    assert_eq!(id["email_verified"], false);
    let sub = id["sub"].clone();
    assert_eq!(id["amr"], serde_json::json!(["fed"]));
    // The numeric id is the identity: the next login (signed out of our session) finds the
    // same account.
    f.sign_out().await;
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "octo").await;
    assert_eq!(f.tokens_of(&response, &pkce).await["sub"], sub);
    let issuer = f.idp.issuer.clone();
    let (store, audit) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire", "octo"]);
    // Linked under the origin of the authorization endpoint, by the decimal id.
    let link = authz_server::store::upstream_links::get(store.as_ref(), &issuer, "12345")
        .unwrap()
        .expect("octo's link by GitHub id");
    assert_eq!(link.user_id, sub.as_str().unwrap());
    assert_eq!(audit.matches("\"user.created\"").count(), 1);
}

/// A PKCS#8 PEM of `key`.
fn pem(key: &SigningKey) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(key.pkcs8_der().expose());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_authenticates_us_at_the_upstream() {
    let key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("broker-key-1");
    let jwks = serde_json::json!({"keys": [key.public_jwk().to_json()]}).to_string();
    let setup = Setup {
        tamper: None,
        idp_env: vec![
            ("CLIENT_AUTH", "private_key_jwt".into()),
            ("CLIENT_JWKS", jwks),
        ],
        upstream: Box::new(move |issuer, secret_file| {
            let key_file = secret_file.with_file_name("broker-key.pem");
            server_kit::files::write_private(&key_file, pem(&key).as_bytes()).unwrap();
            let auth = format!(
                "client_auth = \"private_key_jwt\"\nprivate_key_file = \"{}\"\nprivate_key_kid = \"broker-key-1\"\n",
                key_file.display()
            );
            oidc_upstream(issuer, "create", &auth)
        }),
    };
    let f = Federation::launch(setup, |_| {}, |_| {}).await;
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "pat").await;
    let id = f.tokens_of(&response, &pkce).await;
    assert_eq!(id["preferred_username"], format!("pat@{DOMAIN}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_post_authenticates_us_at_the_upstream() {
    let setup = Setup {
        idp_env: vec![("CLIENT_AUTH", "client_secret_post".into())],
        ..Setup::oidc_with("create", "client_auth = \"client_secret_post\"\n")
    };
    let f = Federation::launch(setup, |_| {}, |_| {}).await;
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "polly").await;
    let id = f.tokens_of(&response, &pkce).await;
    assert_eq!(id["preferred_username"], format!("polly@{DOMAIN}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_userinfo_endpoint_fills_claims_the_id_token_lacks() {
    let setup = Setup::oidc_with("create", "userinfo = true\n[claims]\nteam = \"team\"\n");
    let f = Federation::launch(setup, |_| {}, |_| {}).await;
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "tina").await;
    let id = f.tokens_of(&response, &pkce).await;
    // The upstream releases `team` only at its userinfo endpoint.
    assert_eq!(id["team"], "upstream-team");
    assert_eq!(id["name"], "Upstream tina");
    let (store, _) = f.stopped_store().await;
    let tina = authz_server::users::by_handle(store.as_ref(), "tina")
        .unwrap()
        .unwrap();
    assert_eq!(tina.team.as_deref(), Some("upstream-team"));
}
