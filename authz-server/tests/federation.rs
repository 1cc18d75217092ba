//! Login through an upstream OpenID Provider: node-oidc-provider (npm `oidc-provider`, pinned in
//! tests/interop) runs as a real upstream on 127.0.0.1 (`tests/interop/upstream_idp.mjs`, its
//! development login and consent pages), the authz-server in-process over TLS with an
//! `[[upstream]]` pointing at it, and a reqwest client with a cookie store plays the browser:
//! our `/authorize` → the login page's "Sign in with …" link → the upstream's login and consent
//! forms → our callback → our code → our `/token`. Then each refusal with its exact error (state
//! mismatch, replay, expiry, the upstream's `access_denied`, ID tokens with a defect, an upstream
//! down, `first_login = "refuse"`, a taken handle, a pure broker's password form), that a
//! refused login creates nothing, that an e-mail address never finds an account, the `link`
//! policy, and a link whose account is gone, which is removed so the login is a first login
//! (an upstream silent or answering too much: `upstream_discovery.rs`). `cargo xtask test`
//! installs node and the package (`npm ci` in tests/interop); missing, the tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::upstream::*;
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_logs_in_through_the_upstream_and_gets_our_tokens() {
    let f = Federation::start(None, "create", |_| {}).await;
    let pkce = Pkce::new();
    let page = f.login_page(&pkce).await;
    assert!(page.contains("Sign in with Corp &lt;IdP&gt;"), "{page}");
    assert!(page.contains(r#"name="password""#));

    let response = f.log_in(&pkce, "bob").await;
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-upstream-state=;") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    assert!(cookies.iter().any(|c| c.starts_with("__Host-session=")));
    let id = f.tokens_of(&response, &pkce).await;
    assert_eq!(id["preferred_username"], format!("bob@{DOMAIN}"));
    assert_eq!(id["name"], "Upstream bob");
    assert_eq!(id["email"], "bob@corp.example");
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["amr"], serde_json::json!(["fed"]));
    let sub = id["sub"].as_str().unwrap().to_owned();

    // Inside the session started by the upstream login, our next authorization asks nothing.
    let pkce = Pkce::new();
    let response = f
        .browser
        .get(f.h.url("/authorize"))
        .query(&params_for(&pkce, "wireapp", "openid profile email"))
        .send()
        .await
        .unwrap();
    let again = f.tokens_of(&response, &pkce).await;
    assert_eq!(again["sub"], sub.as_str());
    assert_eq!(again["auth_time"], id["auth_time"]);

    // Signed out, the next login through the upstream finds the linked account.
    f.sign_out().await;
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "bob").await;
    assert_eq!(f.tokens_of(&response, &pkce).await["sub"], sub.as_str());

    let issuer = f.idp.issuer.clone();
    let (store, audit) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire", "bob"]);
    let link = authz_server::store::upstream_links::get(store.as_ref(), &issuer, "bob")
        .unwrap()
        .expect("bob's link");
    assert_eq!(
        (link.user_id.as_str(), link.upstream.as_str()),
        (sub.as_str(), "corp")
    );
    let events: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "user.created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["upstream"], "corp");
    let logins = events
        .iter()
        .filter(|e| e["event"] == "login.succeeded" && e["upstream"] == "corp")
        .count();
    assert_eq!(logins, 2);
    assert!(!audit.contains(UPSTREAM_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_another_state_is_refused_and_the_login_still_waits() {
    let f = Federation::start(None, "create", |_| {}).await;
    let pkce = Pkce::new();
    let at_upstream = f.to_upstream(&pkce).await;
    let callback = f.upstream_login(at_upstream, "carol", false).await;
    let mut forged = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = forged.query_pairs().into_owned().collect();
    forged
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs.iter().map(|(k, v)| {
            (
                k.as_str(),
                if k == "state" {
                    "forged-state"
                } else {
                    v.as_str()
                },
            )
        }));
    let response = f.get(forged.as_str()).await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("state mismatch: this answer belongs to a login this browser did not start"),
        "{page}"
    );
    // The real answer still completes the login.
    let response = f.get(&callback).await;
    f.tokens_of(&response, &pkce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_callback_is_refused_and_creates_nothing_more() {
    let f = Federation::start(None, "create", |_| {}).await;
    let pkce = Pkce::new();
    let at_upstream = f.to_upstream(&pkce).await;
    let callback = f.upstream_login(at_upstream, "dave", false).await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let response = f.get(&callback).await;
    f.tokens_of(&response, &pkce).await;
    // The browser's cookie is gone: a replay from it is a mismatch.
    let response = f.get(&callback).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("state mismatch"));
    // A replay that still carries the cookie finds the login used.
    let response =
        f.h.client
            .get(&callback)
            .header("cookie", format!("__Host-upstream-state={state}"))
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("this login is unknown, expired or was already used"),
        "{page}"
    );
    let (store, audit) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire", "dave"]);
    assert_eq!(audit.matches("\"login.succeeded\"").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstreams_access_denied_goes_back_to_the_client() {
    let f = Federation::start(None, "create", |_| {}).await;
    let pkce = Pkce::new();
    let at_upstream = f.to_upstream(&pkce).await;
    let callback = f.upstream_login(at_upstream, "erin", true).await;
    let response = f.get(&callback).await;
    let (error, description) = client_error(&response);
    assert_eq!(error, "access_denied");
    assert_eq!(description, "Corp <IdP> refused the login (access_denied)");
    assert_eq!(location_params(&response)["iss"], f.h.base);
    let (store, _) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_with_a_defect_are_refused_and_create_nothing() {
    for (tamper, reason) in [
        ("nonce", "nonce mismatch"),
        ("aud", "audience mismatch"),
        ("iss", "issuer mismatch"),
        ("exp", "expired"),
        ("none", "algorithm `none` is not allowed"),
        ("kid", "it names no key of the identity provider"),
    ] {
        let f = Federation::start(Some(tamper), "create", |_| {}).await;
        let pkce = Pkce::new();
        let response = f.log_in(&pkce, "frank").await;
        let (error, description) = client_error(&response);
        assert_eq!(error, "access_denied", "{tamper}");
        assert!(
            description.starts_with("Corp <IdP>'s ID token was refused: ")
                && description.contains(reason),
            "{tamper}: {description}"
        );
        let (store, audit) = f.stopped_store().await;
        assert_eq!(handles(store.as_ref()), ["alice_wire"], "{tamper}");
        assert!(audit.contains("\"login.failed\""), "{tamper}");
        assert!(!audit.contains("\"user.created\""), "{tamper}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_ends_in_temporarily_unavailable_and_creates_nothing() {
    let mut f = Federation::start(None, "create", |_| {}).await;
    let pkce = Pkce::new();
    let at_upstream = f.to_upstream(&pkce).await;
    let callback = f.upstream_login(at_upstream, "grace", false).await;
    f.idp.child.kill().await.unwrap();
    let response = f.get(&callback).await;
    let (error, description) = client_error(&response);
    assert_eq!(error, "temporarily_unavailable");
    assert_eq!(
        description,
        "the identity provider Corp <IdP> could not be reached: connection failed"
    );
    let (store, _) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_login_refuse_turns_an_unknown_identity_away() {
    let f = Federation::start(None, "refuse", |_| {}).await;
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "heidi").await;
    let (error, description) = client_error(&response);
    assert_eq!(error, "access_denied");
    assert_eq!(
        description,
        "no account here is linked to this Corp <IdP> identity, and none is created at a first login; ask an administrator"
    );
    let (store, _) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_identity_with_a_local_handle_does_not_take_the_account_over() {
    let f = Federation::start(None, "create", |_| {}).await;
    let password_sub = f.h.login(None).await;
    let password_sub = f.h.verified_id_token(&password_sub).await["sub"].clone();
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "alice_wire").await;
    let (error, description) = client_error(&response);
    assert_eq!(error, "access_denied");
    assert_eq!(
        description,
        "the handle \"alice_wire\" belongs to another account here; an administrator can link your Corp <IdP> identity to your account"
    );
    // The local account is untouched and its password still logs it in.
    let tokens = f.h.login(None).await;
    assert_eq!(f.h.verified_id_token(&tokens).await["sub"], password_sub);
    let issuer = f.idp.issuer.clone();
    let (store, _) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire"]);
    assert!(
        authz_server::store::upstream_links::get(store.as_ref(), &issuer, "alice_wire")
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pure_broker_offers_no_password_form_and_refuses_password_logins() {
    let f = Federation::start(None, "create", |c| c.local_login = false).await;
    let pkce = Pkce::new();
    let page = f.login_page(&pkce).await;
    assert!(!page.contains(r#"name="password""#), "{page}");
    assert!(page.contains("Sign in with Corp &lt;IdP&gt;"));
    let response =
        f.h.authorize(&authorize_params(&pkce), "alice_wire", &f.h.password)
            .await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
    let page = response.text().await.unwrap();
    assert!(
        page.contains("password login is switched off here; sign in through an identity provider"),
        "{page}"
    );
    // The upstream still logs users in.
    let response = f.log_in(&pkce, "ivan").await;
    f.tokens_of(&response, &pkce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_comes_back_after_its_time_is_refused() {
    let f = Federation::start(None, "create", |_| {}).await;
    let pkce = Pkce::new();
    let at_upstream = f.to_upstream(&pkce).await;
    let callback = f.upstream_login(at_upstream, "judy", false).await;
    f.h.clock
        .advance(authz_server::federation::login::LOGIN_TTL + 1);
    let response = f.get(&callback).await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("this login is unknown, expired or was already used"),
        "{page}"
    );
    let (store, _) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_login_link_links_the_identity_to_the_account_the_user_logs_in_to() {
    let f = Federation::start(None, "link", |_| {}).await;
    let tokens = f.h.login(None).await;
    let alice = f.h.verified_id_token(&tokens).await["sub"].clone();
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "kate").await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("No account here is linked to your Corp &lt;IdP&gt; identity yet"),
        "{page}"
    );
    let ticket = ticket_of(&page);
    let link = |client: &reqwest::Client, password: &str| {
        client
            .post(f.h.url("/upstream/link"))
            .form(&[
                ("ticket", ticket.as_str()),
                ("username", "alice_wire"),
                ("password", password),
            ])
            .send()
    };
    // Another browser cannot use the ticket.
    let response = link(&f.h.client, &f.h.password).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("state mismatch: this link belongs to a login this browser did not start")
    );
    // A wrong password leaves the ticket for another try.
    let response = link(&f.browser, "wrong password").await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Wrong handle or password.")
    );
    let response = link(&f.browser, &f.h.password).await.unwrap();
    assert_eq!(f.tokens_of(&response, &pkce).await["sub"], alice);
    // Used once.
    let response =
        f.h.client
            .post(f.h.url("/upstream/link"))
            .header("cookie", format!("__Host-upstream-state={ticket}"))
            .form(&[
                ("ticket", ticket.as_str()),
                ("username", "alice_wire"),
                ("password", f.h.password.as_str()),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("this link request is unknown, expired or was already used")
    );
    // From now on the upstream logs kate in to alice_wire's account directly (in a browser
    // signed out of the session the link started).
    f.sign_out().await;
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "kate").await;
    assert_eq!(f.tokens_of(&response, &pkce).await["sub"], alice);
    let issuer = f.idp.issuer.clone();
    let (store, audit) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire"]);
    let links =
        authz_server::store::upstream_links::of_user(store.as_ref(), alice.as_str().unwrap())
            .unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(
        (links[0].issuer.as_str(), links[0].subject.as_str()),
        (issuer.as_str(), "kate")
    );
    assert_eq!(audit.matches("\"upstream.linked\"").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_email_equal_to_a_local_accounts_never_logs_in_to_that_account() {
    let f = Federation::start_seeded(
        None,
        "create",
        |_| {},
        |store| {
            let email = authz_server::users::Email::new("lisa@corp.example", true).unwrap();
            authz_server::users::add_with_email(
                store,
                &authz_server::users::NewUser {
                    handle: "lisa_local",
                    name: "Lisa",
                    team: None,
                    domain: DOMAIN,
                    password: &proto::secret::SecretString::new("lisa's password"),
                },
                Some(email),
            )
            .unwrap();
        },
    )
    .await;
    let local =
        f.h.login_as("wireapp", "openid", "lisa_local", "lisa's password")
            .await;
    let local = f.h.verified_id_token(&local).await["sub"].clone();
    // The upstream's lisa has the same verified address: she gets an account of her own.
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "lisa").await;
    let id = f.tokens_of(&response, &pkce).await;
    assert_eq!(id["email"], "lisa@corp.example");
    assert_ne!(id["sub"], local);
    let (store, _) = f.stopped_store().await;
    assert_eq!(
        handles(store.as_ref()),
        ["alice_wire", "lisa", "lisa_local"]
    );
    let links =
        authz_server::store::upstream_links::of_user(store.as_ref(), local.as_str().unwrap())
            .unwrap();
    assert!(links.is_empty(), "{links:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_simultaneous_upstream_starts_from_one_address_store_at_most_the_burst() {
    let fed = Federation::start(None, "create", |c| {
        c.rate_limits.upstream_logins_per_ip = server_kit::rate_limit::Rate::new(1, 10);
        c.limits.max_connections_per_address = 1000;
    })
    .await;
    let page = fed.login_page(&Pkce::new()).await;
    let form = std::sync::Arc::new(start_form(&page));
    let url = fed.h.url("/upstream/start");
    let starts: Vec<_> = (0..100)
        .map(|_| {
            let (browser, url, form) = (fed.browser.clone(), url.clone(), form.clone());
            tokio::spawn(async move { browser.post(&url).form(&*form).send().await.unwrap() })
        })
        .collect();
    let (mut sent, mut refused) = (0, 0);
    for start in starts {
        let answer = start.await.unwrap();
        match answer.status().as_u16() {
            303 => sent += 1,
            429 => {
                assert!(answer.headers().contains_key("retry-after"));
                assert!(
                    answer
                        .text()
                        .await
                        .unwrap()
                        .contains("upstream logins started from this address")
                );
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((sent, refused), (10, 90));
    let (store, _) = fed.stopped_store().await;
    let waiting = waiting_logins(store.as_ref());
    assert_eq!(waiting.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_name_that_cannot_be_a_wire_display_name_makes_no_account() {
    let f = Federation::start(None, "create", |_| {}).await;
    let pkce = Pkce::new();
    // The upstream names its users "Upstream <login>": 259 bytes here, over Wire's 256.
    let response = f.log_in(&pkce, &"a".repeat(250)).await;
    let (error, description) = client_error(&response);
    assert_eq!(error, "access_denied");
    assert_eq!(
        description,
        "the Corp <IdP> identity cannot make an account: the display name is blank, over 256 bytes or has control characters"
    );
    let (store, _) = f.stopped_store().await;
    assert_eq!(handles(store.as_ref()), ["alice_wire"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_carrying_more_than_8_kib_of_request_is_refused_and_stores_nothing() {
    let f = Federation::start(None, "create", |_| {}).await;
    let page = f.login_page(&Pkce::new()).await;
    let mut form = start_form(&page);
    form.push(("padding".into(), "x".repeat(8 * 1024)));
    let response = f
        .browser
        .post(f.h.url("/upstream/start"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let (error, description) = client_error(&response);
    assert_eq!(error, "invalid_request");
    assert_eq!(
        description,
        "the authorization request's parameters exceed 8192 bytes"
    );
    assert!(response.headers().get("set-cookie").is_none());
    let (store, _) = f.stopped_store().await;
    let waiting = waiting_logins(store.as_ref());
    assert!(waiting.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_login_starts_only_from_a_button_of_our_login_page() {
    let f = Federation::start(None, "create", |_| {}).await;
    let pkce = Pkce::new();
    let response = f
        .browser
        .get(f.h.url("/authorize"))
        .query(&params_for(&pkce, "wireapp", "openid profile email"))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-login-csrf="), "{cookie}");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let form = start_form(&response.text().await.unwrap());
    let refused = "This sign-in did not come from this server's login page";
    // Another site: a link (GET), or a form posted without our cookie, with or without a token.
    let get = f.get(&f.h.url("/upstream/start")).await;
    assert_eq!(get.status(), 405);
    let stranger = browser(&f.h);
    for token in [None, Some("forged")] {
        let mut fields: Vec<(String, String)> = form
            .iter()
            .filter(|(k, _)| k != "login_csrf")
            .cloned()
            .collect();
        if let Some(token) = token {
            fields.push(("login_csrf".into(), token.into()));
        }
        let response = stranger
            .post(f.h.url("/upstream/start"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        assert!(response.text().await.unwrap().contains(refused));
    }
    // Our cookie but another token.
    let mut wrong = form.clone();
    wrong.retain(|(k, _)| k != "login_csrf");
    wrong.push(("login_csrf".into(), "x".repeat(22)));
    let response = f
        .browser
        .post(f.h.url("/upstream/start"))
        .form(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // The page's own button.
    let response = f
        .browser
        .post(f.h.url("/upstream/start"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let (store, _) = f.stopped_store().await;
    let waiting = waiting_logins(store.as_ref());
    assert_eq!(waiting.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_login_asked_of_us_is_asked_of_the_upstream_and_its_time_is_the_upstreams() {
    let f = Federation::start(None, "create", |_| {}).await;
    let pkce = Pkce::new();
    let first = f.log_in(&pkce, "gail").await;
    let first = f.tokens_of(&first, &pkce).await;
    assert_eq!(first["amr"], serde_json::json!(["fed"]));
    f.sign_out().await;

    // The upstream still has its own session, but a client asks us for a new login: the
    // upstream is asked for one too (prompt=login, max_age=0) and shows its login form again.
    let pkce = Pkce::new();
    let mut params = params_for(&pkce, "wireapp", "openid profile email");
    params.push(("prompt", "login".into()));
    let at_upstream = f.to_upstream_for(&params).await;
    let asked: std::collections::HashMap<String, String> = url::Url::parse(&at_upstream)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(
        (asked["prompt"].as_str(), asked["max_age"].as_str()),
        ("login", "0")
    );
    let login_form = f.get(&at_upstream).await;
    let mut url = at_upstream.clone();
    if login_form.status().is_redirection() {
        url = resolve(&url, &location(&login_form));
    }
    let shown = f.get(&url).await.text().await.unwrap();
    assert!(
        shown.contains(r#"name="prompt" value="login""#),
        "the upstream asks for the login again"
    );
    let callback = f.upstream_login(at_upstream, "gail", false).await;
    let response = f.get(&callback).await;
    let id = f.tokens_of(&response, &pkce).await;
    // Our ID token's auth_time is the upstream's new one.
    assert!(id["auth_time"].as_i64().unwrap() >= first["auth_time"].as_i64().unwrap());
    assert_eq!(id["sub"], first["sub"]);
}

/// The upstream and our server with `first_login`, whose store holds a stale link: an account
/// `kim` with a password, the upstream identity `kim` linked to it, then the account's record
/// removed directly (its link left behind). With the upstream's issuer and the gone account's id.
async fn with_stale_link(first_login: &'static str) -> (Federation, String, String) {
    use authz_server::store::{trees, upstream_links};
    let (issuer, stale) = (std::sync::OnceLock::new(), std::sync::OnceLock::new());
    let f = Federation::start_seeded(
        None,
        first_login,
        |c| issuer.set(c.upstream[0].issuer()).unwrap(),
        |store| {
            add_user(store, "kim", "kims password");
            let user = authz_server::store::users::by_handle(store, "kim")
                .unwrap()
                .unwrap();
            let link = upstream_links::UpstreamLink {
                issuer: issuer.get().unwrap().clone(),
                subject: "kim".into(),
                user_id: user.id.clone(),
                upstream: "corp".into(),
                linked_at: 0,
            };
            assert!(upstream_links::insert(store, &link).unwrap());
            store.take(trees::USERS, &user.id).unwrap();
            stale.set(user.id).unwrap();
        },
    )
    .await;
    (f, issuer.into_inner().unwrap(), stale.into_inner().unwrap())
}

/// The audit log's `upstream.stale_link_removed` events.
fn stale_links_removed(audit: &str) -> Vec<Value> {
    audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["event"] == "upstream.stale_link_removed")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_account_is_gone_is_removed_and_the_login_makes_a_new_account() {
    let (f, issuer, stale) = with_stale_link("create").await;
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "kim").await;
    let claims = f.tokens_of(&response, &pkce).await;
    let (store, audit) = f.stopped_store().await;
    let link = authz_server::store::upstream_links::get(store.as_ref(), &issuer, "kim")
        .unwrap()
        .unwrap();
    assert_ne!(link.user_id, stale);
    assert_eq!(claims["sub"], link.user_id.as_str());
    let user = authz_server::store::users::get(store.as_ref(), &link.user_id)
        .unwrap()
        .unwrap();
    assert_eq!(user.handle, "kim");
    assert!(!user.has_password());
    assert_eq!(handles(store.as_ref()), ["alice_wire", "kim"]);
    let removed = stale_links_removed(&audit);
    assert_eq!(removed.len(), 1, "{audit}");
    assert_eq!(removed[0]["user"], stale.as_str());
    assert_eq!(removed[0]["upstream"], "corp");
    assert!(audit.contains("\"created\":true"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_account_is_gone_is_removed_and_refuse_turns_the_identity_away() {
    let (f, issuer, stale) = with_stale_link("refuse").await;
    let response = f.log_in(&Pkce::new(), "kim").await;
    let (error, description) = client_error(&response);
    assert_eq!(error, "access_denied");
    assert!(
        description.starts_with("no account here is linked to this Corp <IdP> identity"),
        "{description}"
    );
    let (store, audit) = f.stopped_store().await;
    assert!(
        authz_server::store::upstream_links::get(store.as_ref(), &issuer, "kim")
            .unwrap()
            .is_none()
    );
    assert_eq!(handles(store.as_ref()), ["alice_wire"]);
    assert_eq!(stale_links_removed(&audit)[0]["user"], stale.as_str());
}
