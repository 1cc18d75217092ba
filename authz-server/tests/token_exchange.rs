//! The upstream's tokens kept after a login and RFC 8693 token exchange for them, against
//! node-oidc-provider (`tests/interop/upstream_idp.mjs`, see `common::upstream`): the store
//! never holds them in the clear (the raw sled files are searched for the token's bytes) and
//! the key file is owner-only; an allowed confidential client gets the upstream's access token,
//! which works at the upstream's userinfo endpoint; a client not allowed, an unknown upstream,
//! a user without tokens there and a subject token that is not ours are refused with their RFC
//! 8693 errors; with the upstream's access tokens living 30 s and our clock moved past their
//! expiry (no waiting), a hundred simultaneous exchanges make exactly one refresh at the
//! upstream (counted there; its refresh tokens are single-use) and all get the refreshed
//! token; a refresh (within the margin) the upstream refuses drops the kept tokens with
//! `invalid_grant`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authz_server::oauth_clients::{self, OAuthClient};
use common::upstream::*;
use common::*;
use serde_json::Value;

const EXCHANGE_URN: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_URN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Confidential clients seeded into the store: `exchanger` (allowed for `corp`) and `other`
/// (not allowed), with their secrets.
struct Clients {
    exchanger: String,
    other: String,
}

impl Clients {
    fn new() -> Self {
        Self {
            exchanger: oauth_clients::new_secret().0.expose().to_owned(),
            other: oauth_clients::new_secret().0.expose().to_owned(),
        }
    }

    fn seed(&self, store: &dyn authz_server::store::Store) {
        for (id, secret, upstreams) in [
            ("exchanger", &self.exchanger, vec!["corp".to_owned()]),
            ("other", &self.other, vec![]),
        ] {
            oauth_clients::add(
                store,
                &OAuthClient {
                    id: id.into(),
                    redirect_uris: vec![],
                    secret_sha256: Some(authz_server::store::digest(secret)),
                    consent_required: false,
                    jwks: None,
                    scopes: None,
                    token_exchange: upstreams,
                    remote_auth: Vec::new(),
                    jwt_bearer: Vec::new(),
                    post_logout_redirect_uris: Vec::new(),
                },
            )
            .unwrap();
        }
    }
}

/// The upstream (access tokens living `ttl` seconds, if given) and our server with the two
/// clients.
async fn start(clients: &Clients, ttl: Option<u32>) -> Federation {
    let setup = Setup {
        idp_env: ttl
            .map(|t| vec![("ACCESS_TOKEN_TTL", t.to_string())])
            .unwrap_or_default(),
        ..Setup::oidc("create")
    };
    Federation::launch(
        setup,
        |c| c.limits.max_connections_per_address = 1000,
        |store| clients.seed(store),
    )
    .await
}

/// Our access token for `login`, logged in through the upstream.
async fn our_token(f: &Federation, login: &str) -> String {
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, login).await;
    let tokens = f.token_answer(&response, &pkce).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// A token exchange of `subject_token` by `client` for `target` (`audience` or `resource`).
async fn exchange(
    f: &Federation,
    client: (&str, &str),
    subject_token: &str,
    target: (&str, &str),
) -> reqwest::Response {
    f.h.client
        .post(f.h.url("/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", EXCHANGE_URN),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS_TOKEN_URN),
            target,
        ])
        .send()
        .await
        .unwrap()
}

/// The upstream access token that an exchange of `subject_token` by the client `exchanger`
/// at `token_url` hands out (status 200 asserted); owned arguments, to run as a task.
async fn exchanged_token(
    client: reqwest::Client,
    token_url: String,
    secret: String,
    subject_token: String,
) -> String {
    let response = client
        .post(token_url)
        .basic_auth("exchanger", Some(secret))
        .form(&[
            ("grant_type", EXCHANGE_URN),
            ("subject_token", subject_token.as_str()),
            ("subject_token_type", ACCESS_TOKEN_URN),
            ("audience", "corp"),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// The `error` and `error_description` of a refusal with status 400.
async fn refusal(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    (
        body["error"].as_str().unwrap().to_owned(),
        body["error_description"].as_str().unwrap().to_owned(),
    )
}

/// The upstream's userinfo for `access_token`: status and body.
async fn upstream_userinfo(f: &Federation, access_token: &str) -> (u16, Value) {
    let response = plain_http()
        .get(format!("{}/me", f.idp.issuer))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            bytes.extend(all_bytes(&path));
        } else {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_client_gets_the_upstreams_token_which_is_kept_sealed() {
    let clients = Clients::new();
    let f = start(&clients, None).await;
    let bob = our_token(&f, "bob").await;
    let exchanger = ("exchanger", clients.exchanger.as_str());

    let response = exchange(&f, exchanger, &bob, ("audience", "corp")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_URN);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0, "{body}");
    assert!(body["scope"].as_str().unwrap().contains("openid"), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let upstream_token = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(upstream_token, bob);
    // The upstream's own token: its userinfo endpoint knows bob by it.
    let (status, info) = upstream_userinfo(&f, &upstream_token).await;
    assert_eq!((status, info["sub"].as_str()), (200, Some("bob")));
    // The upstream may also be named by its issuer (`resource`).
    let issuer = f.idp.issuer.clone();
    let response = exchange(&f, exchanger, &bob, ("resource", &issuer)).await;
    assert_eq!(response.status(), 200);

    // A client not allowed for the upstream.
    let other = ("other", clients.other.as_str());
    let (error, _) = refusal(exchange(&f, other, &bob, ("audience", "corp")).await).await;
    assert_eq!(error, "unauthorized_client");
    // An upstream that is not configured.
    let (error, description) =
        refusal(exchange(&f, exchanger, &bob, ("audience", "nowhere")).await).await;
    assert_eq!(error, "invalid_target");
    assert!(description.contains("\"nowhere\""), "{description}");
    // A user who never logged in through the upstream.
    let alice = f.h.login(None).await;
    let alice = alice["access_token"].as_str().unwrap();
    let (error, description) =
        refusal(exchange(&f, exchanger, alice, ("audience", "corp")).await).await;
    assert_eq!(error, "invalid_target");
    assert!(
        description.starts_with("the user has no tokens of Corp <IdP> here"),
        "{description}"
    );
    // A subject token that is not one of ours (here: the upstream's).
    let (error, description) =
        refusal(exchange(&f, exchanger, &upstream_token, ("audience", "corp")).await).await;
    assert_eq!(error, "invalid_grant");
    assert!(
        description.starts_with("the subject token is not acceptable"),
        "{description}"
    );

    let mut f = f;
    f.h.server.take().unwrap().shutdown().await.unwrap();
    let data = f.h.dir.path().to_owned();
    let key_file = data.join("upstream-tokens.key");
    let audit = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Neither the store's files nor the audit log hold the upstream's token.
    let store_bytes = all_bytes(&data.join("store"));
    assert!(!store_bytes.is_empty());
    let needle = upstream_token.as_bytes();
    assert!(!store_bytes.windows(needle.len()).any(|w| w == needle));
    assert!(!audit.contains(&upstream_token));
    assert_eq!(audit.matches("\"token.exchanged\"").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_upstream_token_is_refreshed_once_for_a_hundred_exchanges_until_refused() {
    let clients = Clients::new();
    // Upstream access tokens live 30 s, our refresh margin is 60 s: each exchange finds the
    // kept token about to expire.
    let f = start(&clients, Some(30)).await;
    let rita = our_token(&f, "rita").await;
    let exchanger = ("exchanger", clients.exchanger.clone());
    let refreshes = |v: Value| v["refreshes"].as_u64().unwrap();
    let count = || f.idp.test_route(reqwest::Method::GET, "/test/refreshes");
    assert_eq!(refreshes(count().await), 0);
    // Our clock passes the upstream token's expiry (the upstream's own clock is not moved,
    // so no waiting): the next exchanges need a refresh.
    f.h.clock.advance(31);
    // A hundred at once: one refresh, and every one gets the refreshed token.
    let exchanges: Vec<_> = (0..100)
        .map(|_| {
            let (client, url, secret, rita) = (
                f.h.client.clone(),
                f.h.url("/token"),
                exchanger.1.clone(),
                rita.clone(),
            );
            tokio::spawn(exchanged_token(client, url, secret, rita))
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for exchanged in exchanges {
        tokens.insert(exchanged.await.unwrap());
    }
    assert_eq!(refreshes(count().await), 1);
    assert_eq!(tokens.len(), 1, "one refreshed token for all");
    let refreshed = tokens.into_iter().next().unwrap();
    let (status, info) = upstream_userinfo(&f, &refreshed).await;
    assert_eq!((status, info["sub"].as_str()), (200, Some("rita")));
    // Fresh again: the next exchange hands the same token out without a refresh.
    let response = exchange(&f, (exchanger.0, &exchanger.1), &rita, ("audience", "corp")).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["access_token"], refreshed.as_str());
    assert_eq!(refreshes(count().await), 1);
    // Within the refresh margin (10 s left of 30), not expired yet: refreshed first.
    f.h.clock.advance(20);

    // The upstream revokes its refresh tokens: the next refresh is refused, the kept tokens go.
    let revoked = f
        .idp
        .test_route(reqwest::Method::POST, "/test/revoke-refresh-tokens")
        .await;
    assert!(revoked["revoked"].as_u64().unwrap() >= 1, "{revoked}");
    let (error, description) =
        refusal(exchange(&f, (exchanger.0, &exchanger.1), &rita, ("audience", "corp")).await).await;
    assert_eq!(error, "invalid_grant");
    assert_eq!(description, "the user must log in through Corp <IdP> again");
    let (error, _) =
        refusal(exchange(&f, (exchanger.0, &exchanger.1), &rita, ("audience", "corp")).await).await;
    assert_eq!(error, "invalid_target");
    let (store, audit) = f.stopped_store().await;
    let kept = store
        .scan_prefix(authz_server::store::trees::UPSTREAM_TOKENS, "")
        .unwrap();
    assert!(kept.is_empty(), "{kept:?}");
    assert!(audit.contains("\"upstream.tokens_dropped\""));
}

/// Two replicas of our server on one PostgreSQL database, each with its own in-process refresh
/// locks. The kept token needs a refresh; the upstream (whose refresh tokens are single-use)
/// holds the first refresh, from replica 1, while fifty exchanges reach replica 2: no second
/// refresh reaches the upstream (replica 2 waits for the lease in the database), and once the
/// first is answered every exchange of both replicas gets the one refreshed token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_racing_for_an_expiring_token_refresh_it_once() {
    let pg = server_kit::testing::TestPostgres::start();
    let clients = Clients::new();
    let setup = Setup {
        idp_env: vec![("ACCESS_TOKEN_TTL", "30".to_owned())],
        ..Setup::oidc("create")
    };
    let store = pg.store_config(Some("replicated"));
    let f = Federation::launch(
        setup,
        |c| {
            c.limits.max_connections_per_address = 1000;
            c.store = store.clone();
        },
        |seeded| clients.seed(seeded),
    )
    .await;
    // The second replica: the same configuration, files and database, its own address and
    // process state, the same public URL.
    let mut second = f.h.config.clone().unwrap();
    second.listen = "127.0.0.1:0".parse().unwrap();
    second.public_url = f.h.base.clone();
    let second = authz_server::start(second, f.h.clock.clone())
        .await
        .unwrap();
    let rita = our_token(&f, "rita").await;
    let refreshes = |v: Value| v["refreshes"].as_u64().unwrap();
    let count = || f.idp.test_route(reqwest::Method::GET, "/test/refreshes");
    let exchange_at = |base: String| {
        let (client, secret, rita) = (f.h.client.clone(), clients.exchanger.clone(), rita.clone());
        tokio::spawn(exchanged_token(
            client,
            format!("{base}/token"),
            secret,
            rita,
        ))
    };

    f.h.clock.advance(31);
    f.idp.test_route(reqwest::Method::POST, "/test/hold").await;
    let mut exchanges = vec![exchange_at(f.h.base.clone())];
    f.idp.test_route(reqwest::Method::GET, "/test/held").await;
    // Straight to replica 2 (its base URL is the public one, replica 1's).
    let second_address = format!("https://{}", second.addr);
    exchanges.extend((0..50).map(|_| exchange_at(second_address.clone())));
    // A second refresh would reach the upstream at once; none comes in two seconds.
    let second_refresh = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        f.idp
            .test_route(reqwest::Method::GET, "/test/held?at_least=2"),
    )
    .await;
    assert!(second_refresh.is_err(), "replica 2 refreshed as well");
    f.idp
        .test_route(reqwest::Method::POST, "/test/release")
        .await;
    let mut tokens = std::collections::HashSet::new();
    for exchanged in exchanges {
        tokens.insert(exchanged.await.unwrap());
    }
    assert_eq!(refreshes(count().await), 1, "one refresh for both replicas");
    assert_eq!(tokens.len(), 1, "one refreshed token for all");
    let (status, _) = upstream_userinfo(&f, tokens.iter().next().unwrap()).await;
    assert_eq!(status, 200);
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlink_while_a_refresh_is_under_way_is_not_undone_by_it() {
    let clients = Clients::new();
    let f = start(&clients, Some(30)).await;
    let exchanger = ("exchanger", clients.exchanger.as_str());
    // alice_wire (who has a password) links her Corp identity from the account page.
    let login = f
        .browser
        .post(f.h.url("/account/login"))
        .form(&[
            ("username", "alice_wire".to_owned()),
            ("password", f.h.password.clone()),
            ("return_to", "/account".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let page = f.get(&f.h.url("/account")).await.text().await.unwrap();
    let csrf = form_field(&page, "Link Corp", "csrf");
    let start = f
        .browser
        .post(f.h.url("/account/link"))
        .form(&[("upstream", "corp".to_owned()), ("csrf", csrf.clone())])
        .send()
        .await
        .unwrap();
    let at_upstream = start.headers()["location"].to_str().unwrap().to_owned();
    let callback = f.upstream_login(at_upstream, "alice-at-corp", false).await;
    assert_eq!(f.get(&callback).await.status(), 303);
    let pkce = Pkce::new();
    let inside = f
        .browser
        .get(f.h.url("/authorize"))
        .query(&params_for(&pkce, "wireapp", "openid profile"))
        .send()
        .await
        .unwrap();
    let ours = f.token_answer(&inside, &pkce).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ok = exchange(&f, exchanger, &ours, ("audience", "corp")).await;
    assert_eq!(ok.status(), 200);

    // The kept token needs a refresh; the upstream holds the refresh until the unlink is done.
    f.h.clock.advance(31);
    f.idp.test_route(reqwest::Method::POST, "/test/hold").await;
    let racing = {
        let (client, url, secret, ours) = (
            f.h.client.clone(),
            f.h.url("/token"),
            clients.exchanger.clone(),
            ours.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .basic_auth("exchanger", Some(secret))
                .form(&[
                    ("grant_type", EXCHANGE_URN),
                    ("subject_token", ours.as_str()),
                    ("subject_token_type", ACCESS_TOKEN_URN),
                    ("audience", "corp"),
                ])
                .send()
                .await
                .unwrap()
        })
    };
    f.idp.test_route(reqwest::Method::GET, "/test/held").await;
    let unlink = f
        .browser
        .post(f.h.url("/account/unlink"))
        .form(&[("upstream", "corp".to_owned()), ("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(unlink.status(), 303);
    f.idp
        .test_route(reqwest::Method::POST, "/test/release")
        .await;
    let (error, description) = refusal(racing.await.unwrap()).await;
    assert_eq!(
        (error.as_str(), description.as_str()),
        (
            "invalid_grant",
            "the user must log in through Corp <IdP> again"
        )
    );
    // Nothing was brought back: no token for an unlinked identity.
    let (error, _) = refusal(exchange(&f, exchanger, &ours, ("audience", "corp")).await).await;
    assert_eq!(error, "invalid_target");
    let (store, _) = f.stopped_store().await;
    let kept = store
        .scan_prefix(authz_server::store::trees::UPSTREAM_TOKENS, "")
        .unwrap();
    assert!(kept.is_empty(), "{kept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_sealed_with_a_replaced_key_are_dropped_and_the_user_logs_in_again() {
    let clients = Clients::new();
    let mut f = start(&clients, None).await;
    let rita = our_token(&f, "rita").await;
    let exchanger = ("exchanger", clients.exchanger.as_str());
    assert_eq!(
        exchange(&f, exchanger, &rita, ("audience", "corp"))
            .await
            .status(),
        200
    );
    // The operator replaces the key file (a restore, a mistake) and restarts on the same port.
    f.h.server.take().unwrap().shutdown().await.unwrap();
    let key_file = f.h.dir.path().join("upstream-tokens.key");
    std::fs::remove_file(&key_file).unwrap();
    server_kit::files::write_private(&key_file, &[7u8; 32]).unwrap();
    let config = authz_server::Config {
        listen: url::Url::parse(&f.h.base)
            .unwrap()
            .socket_addrs(|| None)
            .unwrap()[0],
        data_dir: f.h.dir.path().to_owned(),
        store: f.h.store_config(),
        dev: true,
        domain: DOMAIN.into(),
        upstream: vec![
            toml::from_str(&upstream_config(
                &f.idp.issuer,
                &f.secrets.path().join("corp-secret"),
                "create",
            ))
            .unwrap(),
        ],
        ..authz_server::Config::default()
    };
    f.h.server = Some(
        authz_server::start(config, f.h.clock.clone())
            .await
            .unwrap(),
    );
    let (error, description) =
        refusal(exchange(&f, exchanger, &rita, ("audience", "corp")).await).await;
    assert_eq!(
        (error.as_str(), description.as_str()),
        (
            "invalid_grant",
            "the user must log in through Corp <IdP> again"
        )
    );
    let (error, _) = refusal(exchange(&f, exchanger, &rita, ("audience", "corp")).await).await;
    assert_eq!(error, "invalid_target", "the unreadable record is gone");
}
