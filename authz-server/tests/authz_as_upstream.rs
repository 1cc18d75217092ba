//! Our own authz-server as another one's upstream (issue 18: "a second authz-server process as
//! another upstream"): the broker's login page sends the browser to the upstream authz-server,
//! whose headless password form answers with a code for the broker's confidential client; the
//! broker verifies the upstream's ID token (its discovery, JWKS, `nonce`, RFC 9207 `iss`) and
//! makes the account just in time. Both servers run over TLS on 127.0.0.1 with their own dev
//! PKI and stores; the broker trusts the upstream's dev root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authz_server::oauth_clients::{self, OAuthClient};
use common::upstream::{location, resolve, start_form};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authz_server_logs_users_in_through_another_authz_server() {
    // The broker's address is chosen first: its callback is registered at the upstream.
    let broker_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let callback = format!("https://{broker_addr}/upstream/callback");
    let (secret, digest) = oauth_clients::new_secret();
    let upstream = Harness::start_seeded(
        |_| {},
        |store| {
            add_user(store, "hana", "hana-password-1");
            oauth_clients::add(
                store,
                &OAuthClient {
                    id: "broker".into(),
                    redirect_uris: vec![callback.clone()],
                    secret_sha256: Some(digest.clone()),
                    consent_required: false,
                    jwks: None,
                    scopes: None,
                    post_logout_redirect_uris: Vec::new(),
                    token_exchange: Vec::new(),
                    remote_auth: Vec::new(),
                    jwt_bearer: Vec::new(),
                },
            )
            .unwrap();
        },
    )
    .await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("broker-secret");
    server_kit::files::write_private(&secret_file, secret.expose().as_bytes()).unwrap();
    let upstream_toml = format!(
        "id = \"sister\"\ndisplay_name = \"Sister\"\nkind = \"oidc\"\nissuer = \"{}\"\n\
         client_id = \"broker\"\nclient_secret_file = \"{}\"\ntrust_anchors = [\"{}\"]\n\
         first_login = \"create\"\n",
        upstream.base,
        secret_file.display(),
        upstream.dir.path().join("tls/ca.pem").display()
    );
    let broker = Harness::start_with(|c| {
        c.listen = broker_addr;
        c.upstream = vec![toml::from_str(&upstream_toml).unwrap()];
    })
    .await;

    // The browser: trusts both dev roots, keeps cookies.
    let tls = server_kit::tls::client_config(&[
        broker.dir.path().join("tls/ca.pem"),
        upstream.dir.path().join("tls/ca.pem"),
    ])
    .unwrap();
    let browser = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let pkce = Pkce::new();
    let page = browser
        .get(broker.url("/authorize"))
        .query(&params_for(&pkce, "wireapp", "openid profile"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with Sister"), "{page}");
    let start = browser
        .post(broker.url("/upstream/start"))
        .form(&start_form(&page))
        .send()
        .await
        .unwrap();
    let at_upstream = location(&start);
    assert!(
        at_upstream.starts_with(&upstream.url("/authorize?")),
        "{at_upstream}"
    );
    // The upstream's login form, posted as its page would (its own origin).
    let request: Vec<(String, String)> = url::Url::parse(&at_upstream)
        .unwrap()
        .query_pairs()
        .into_owned()
        .chain([
            ("username".to_owned(), "hana".to_owned()),
            ("password".to_owned(), "hana-password-1".to_owned()),
        ])
        .collect();
    let answered = browser
        .post(upstream.url("/authorize"))
        .header("origin", upstream.base.clone())
        .form(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 303);
    let back = resolve(&at_upstream, &location(&answered));
    assert!(back.starts_with(&callback), "{back}");
    let ours = browser.get(&back).send().await.unwrap();
    assert_eq!(ours.status(), 303);
    let params = location_params(&ours);
    let code = params.get("code").expect("our code");
    let tokens: serde_json::Value = broker
        .token_request(&token_form(code, &pkce.verifier), None)
        .await
        .json()
        .await
        .unwrap();
    let id = broker.verified_id_token(&tokens).await;
    assert_eq!(id["preferred_username"], format!("hana@{DOMAIN}"));
    assert_eq!(id["name"], "hana");
    assert_eq!(id["amr"], serde_json::json!(["fed"]));
    // A new account at the broker, not the upstream's user id.
    let upstream_id = upstream
        .login_as("wireapp", "openid", "hana", "hana-password-1")
        .await;
    let upstream_sub = upstream.verified_id_token(&upstream_id).await["sub"].clone();
    assert_ne!(id["sub"], upstream_sub);
}
