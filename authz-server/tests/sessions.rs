//! Browser sessions at the authorization server (single sign-on): a login starts a session
//! whose cookie lets the next `/authorize` go on without a password; `prompt`, `max_age`,
//! `auth_time`, `amr` and `sid`; idle and absolute lifetimes (the server's clock moved, not
//! waited for); RP-initiated logout; the account page's list of sessions and their revocation;
//! the device page inside a session; and a session ended while a hundred requests use it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authz_server::oauth_clients::OAuthClient;
use common::*;
use serde_json::Value;

const LOGOUT_TARGET: &str = "https://app.example/signed-out";

/// The session cookie a response sets: `__Host-session=value`, checked for its attributes.
fn session_cookie(response: &reqwest::Response) -> String {
    let set = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("__Host-session="))
        .expect("a session cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

/// Whether a response clears the session cookie.
fn clears_session(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("__Host-session=;"))
}

impl Harness {
    /// A GET of `path` (with `query`) in the browser holding `cookie`.
    async fn get_in(
        &self,
        cookie: Option<&str>,
        path: &str,
        query: &[(&str, String)],
    ) -> reqwest::Response {
        let mut request = self.client.get(self.url(path)).query(query);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// A form posted to `path` in the browser holding `cookie`.
    async fn post_in(
        &self,
        cookie: &str,
        path: &str,
        fields: &[(&str, String)],
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("cookie", cookie)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// `GET /authorize` with `params` (and `extra`) in the browser holding `cookie`.
    async fn authorize_in(
        &self,
        cookie: Option<&str>,
        params: &[(&str, String)],
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut query: Vec<(&str, String)> = params.to_vec();
        query.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        self.get_in(cookie, "/authorize", &query).await
    }

    /// A password login of the demo user to the demo client: the session cookie, and the ID
    /// token's claims of the code it gave.
    async fn password_session(&self) -> (String, serde_json::Map<String, Value>) {
        let pkce = Pkce::new();
        let response = self
            .authorize(&authorize_params(&pkce), "alice_wire", &self.password)
            .await;
        assert_eq!(response.status(), 303);
        let cookie = session_cookie(&response);
        let claims = self.claims_of_redirect(&response, &pkce).await;
        (cookie, claims)
    }

    /// The ID token claims of the code in a redirect to the demo client.
    async fn claims_of_redirect(
        &self,
        response: &reqwest::Response,
        pkce: &Pkce,
    ) -> serde_json::Map<String, Value> {
        let code = location_params(response)["code"].clone();
        let tokens: Value = self
            .token_request(&token_form(&code, &pkce.verifier), None)
            .await
            .json()
            .await
            .unwrap();
        self.verified_id_token(&tokens).await
    }

    /// Whether the browser holding `cookie` is still signed in (`prompt=none` gets a code).
    async fn signed_in(&self, cookie: &str) -> bool {
        let response = self
            .authorize_in(
                Some(cookie),
                &authorize_params(&Pkce::new()),
                &[("prompt", "none")],
            )
            .await;
        assert_eq!(response.status(), 303);
        let params = location_params(&response);
        match params.get("error").map(String::as_str) {
            None => true,
            Some("login_required") => false,
            Some(other) => panic!("prompt=none: {other}"),
        }
    }
}

#[tokio::test]
async fn inside_a_session_authorize_asks_nothing_and_the_id_token_says_when_and_how() {
    let h = Harness::start().await;
    let (cookie, first) = h.password_session().await;
    assert_eq!(first["amr"], serde_json::json!(["pwd"]));
    let auth_time = first["auth_time"].as_i64().unwrap();
    assert_eq!(auth_time, h.now());
    let sid = first["sid"].as_str().unwrap().to_owned();

    h.clock.advance(300);
    let pkce = Pkce::new();
    let again = h
        .authorize_in(Some(&cookie), &authorize_params(&pkce), &[])
        .await;
    assert_eq!(again.status(), 303, "no login page inside the session");
    assert!(location_params(&again).contains_key("code"));
    let second = h.claims_of_redirect(&again, &pkce).await;
    assert_eq!(
        second["auth_time"].as_i64(),
        Some(auth_time),
        "the login's time"
    );
    assert_eq!(second["sid"].as_str(), Some(sid.as_str()));
    assert_eq!(second["amr"], serde_json::json!(["pwd"]));

    // Another browser (no cookie, or a forged one) gets the login page.
    let fresh = h
        .authorize_in(None, &authorize_params(&Pkce::new()), &[])
        .await;
    assert_eq!(fresh.status(), 200);
    let forged = format!("{}x", &cookie[..cookie.len() - 1]);
    assert_eq!(
        h.authorize_in(Some(&forged), &authorize_params(&Pkce::new()), &[])
            .await
            .status(),
        200
    );
    let metadata = h.get_json("/.well-known/openid-configuration").await;
    assert_eq!(metadata["end_session_endpoint"], h.url("/logout"));
    assert!(
        metadata["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&"amr".into())
    );
}

#[tokio::test]
async fn prompt_and_max_age_decide_whether_the_session_stands_in_for_a_login() {
    let h = Harness::start().await;
    let params = authorize_params(&Pkce::new());
    let none = h.authorize_in(None, &params, &[("prompt", "none")]).await;
    assert_eq!(none.status(), 303);
    let error = location_params(&none);
    assert_eq!(error["error"], "login_required");
    assert_eq!(error["state"], "st-1");
    assert_eq!(error["iss"], h.base);

    let (cookie, _) = h.password_session().await;
    h.clock.advance(120);
    let login = h
        .authorize_in(Some(&cookie), &params, &[("prompt", "login")])
        .await;
    assert_eq!(login.status(), 200, "prompt=login shows the login page");
    let old = h
        .authorize_in(Some(&cookie), &params, &[("max_age", "60")])
        .await;
    assert_eq!(
        old.status(),
        200,
        "a login older than max_age does not count"
    );
    let recent = h
        .authorize_in(Some(&cookie), &params, &[("max_age", "3600")])
        .await;
    assert_eq!(recent.status(), 303);
    assert!(location_params(&recent).contains_key("code"));

    for (prompt, expected) in [
        ("none login", "invalid_request"),
        ("sometimes", "invalid_request"),
    ] {
        let bad = h
            .authorize_in(Some(&cookie), &params, &[("prompt", prompt)])
            .await;
        assert_eq!(location_params(&bad)["error"], expected, "{prompt}");
    }
    let bad_age = h
        .authorize_in(Some(&cookie), &params, &[("max_age", "-1")])
        .await;
    assert_eq!(location_params(&bad_age)["error"], "invalid_request");

    // A third-party client the user never consented to: no page may be shown.
    let webapp = params_for(&Pkce::new(), "demo-webapp", "openid profile");
    let consent = h
        .authorize_in(Some(&cookie), &webapp, &[("prompt", "none")])
        .await;
    assert_eq!(location_params(&consent)["error"], "consent_required");
    let page = h.authorize_in(Some(&cookie), &webapp, &[]).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Allow access?"));
}

#[tokio::test]
async fn a_session_lapses_when_idle_and_at_its_absolute_end() {
    let h = Harness::start_with(|c| {
        c.sessions.idle_secs = 300;
        c.sessions.absolute_secs = 900;
    })
    .await;
    let (idle, _) = h.password_session().await;
    h.clock.advance(299);
    assert!(h.signed_in(&idle).await, "used within the idle lifetime");
    h.clock.advance(301);
    assert!(!h.signed_in(&idle).await, "idle for longer than 300 s");

    let (busy, _) = h.password_session().await;
    for _ in 0..4 {
        h.clock.advance(200);
        assert!(h.signed_in(&busy).await);
    }
    h.clock.advance(200);
    assert!(
        !h.signed_in(&busy).await,
        "past the absolute lifetime, however used"
    );
}

fn seed_logout_client(store: &dyn authz_server::store::Store) {
    authz_server::oauth_clients::add(
        store,
        &OAuthClient {
            id: "rp".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            secret_sha256: None,
            consent_required: false,
            jwks: None,
            scopes: None,
            post_logout_redirect_uris: vec![LOGOUT_TARGET.into()],
            token_exchange: Vec::new(),
            remote_auth: Vec::new(),
            jwt_bearer: Vec::new(),
        },
    )
    .unwrap();
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_goes_back_to_the_registered_uri() {
    let h = Harness::start_seeded(|_| {}, seed_logout_client).await;
    let pkce = Pkce::new();
    let response = h
        .authorize(
            &params_for(&pkce, "rp", "openid"),
            "alice_wire",
            &h.password,
        )
        .await;
    let cookie = session_cookie(&response);
    let code = location_params(&response)["code"].clone();
    let tokens: Value = h
        .token_request(&token_form_for("rp", &code, &pkce.verifier), None)
        .await
        .json()
        .await
        .unwrap();
    let hint = tokens["id_token"].as_str().unwrap().to_owned();

    // Refused without a redirect: an unregistered URI, a hint of another issuer's shape.
    let unregistered = h
        .get_in(
            Some(&cookie),
            "/logout",
            &[
                ("id_token_hint", hint.clone()),
                ("post_logout_redirect_uri", "https://evil.example/".into()),
            ],
        )
        .await;
    assert_eq!(unregistered.status(), 400);
    assert!(
        unregistered
            .text()
            .await
            .unwrap()
            .contains("not registered")
    );
    let forged = h
        .get_in(
            Some(&cookie),
            "/logout",
            &[("id_token_hint", format!("{hint}x"))],
        )
        .await;
    assert_eq!(forged.status(), 400);
    assert!(
        h.signed_in(&cookie).await,
        "nothing ended by refused requests"
    );

    // A hint naming the signed-in user ends the session at once (its token is expired by now).
    h.clock.advance(1500);
    assert!(h.signed_in(&cookie).await);
    let done = h
        .get_in(
            Some(&cookie),
            "/logout",
            &[
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", LOGOUT_TARGET.into()),
                ("state", "bye".into()),
            ],
        )
        .await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"].to_str().unwrap(),
        format!("{LOGOUT_TARGET}?state=bye")
    );
    assert!(clears_session(&done));
    assert!(
        !h.signed_in(&cookie).await,
        "a logged-out session's cookie is dead"
    );
}

#[tokio::test]
async fn logout_without_a_hint_is_confirmed_on_a_page_and_a_forged_form_is_refused() {
    let h = Harness::start().await;
    let (cookie, _) = h.password_session().await;
    let page = h.get_in(Some(&cookie), "/logout", &[]).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Sign out of this server as <strong>@alice_wire"));
    let token = field_value(&page, "csrf");

    let post = |fields: Vec<(&'static str, String)>| {
        let (h, cookie) = (&h, &cookie);
        async move { h.post_in(cookie, "/logout", &fields).await }
    };
    assert_eq!(post(vec![]).await.status(), 403);
    assert_eq!(post(vec![("csrf", "x".repeat(43))]).await.status(), 403);
    assert!(h.signed_in(&cookie).await);
    let done = post(vec![("csrf", token)]).await;
    assert_eq!(done.status(), 200);
    assert!(clears_session(&done));
    assert!(!h.signed_in(&cookie).await);
}

#[tokio::test]
async fn the_account_page_lists_sessions_and_signs_one_out() {
    let h = Harness::start().await;
    let (laptop, _) = h.password_session().await;
    h.clock.advance(10);
    let (phone, _) = h.password_session().await;
    let signin = h.get_in(None, "/account", &[]).await;
    assert_eq!(signin.status(), 200);
    assert!(
        signin
            .text()
            .await
            .unwrap()
            .contains(r#"action="/account/login""#)
    );

    let page = h.get_in(Some(&laptop), "/account", &[]).await;
    let page = page.text().await.unwrap();
    assert!(page.contains("Signed in as <strong>@alice_wire"));
    assert_eq!(page.matches(r#"name="session""#).count(), 2, "{page}");
    assert!(page.contains("(this browser)"));
    let token = field_value(&page, "csrf");
    // The phone's session: the one not marked as this browser's (listed newest first).
    let phone_id = field_value(&page, "session");

    let revoke = |csrf: String, session: String| {
        let (h, laptop) = (&h, &laptop);
        let fields = [("csrf", csrf), ("session", session)];
        async move { h.post_in(laptop, "/account/sessions/revoke", &fields).await }
    };
    // The token of the phone's own account page does not act for the laptop's session.
    let phone_page = h.get_in(Some(&phone), "/account", &[]).await;
    let phone_token = field_value(&phone_page.text().await.unwrap(), "csrf");
    assert_ne!(phone_token, token);
    assert_eq!(
        revoke(phone_token, phone_id.clone()).await.status(),
        403,
        "another session's form token"
    );
    assert!(h.signed_in(&phone).await);
    assert_eq!(revoke(token, phone_id).await.status(), 303);
    assert!(
        !h.signed_in(&phone).await,
        "signed out from the account page"
    );
    assert!(h.signed_in(&laptop).await, "the other session goes on");
}

#[tokio::test]
async fn the_device_page_inside_a_session_asks_no_password_and_needs_the_form_token() {
    let h = Harness::start().await;
    let (cookie, _) = h.password_session().await;
    let codes: Value = h
        .client
        .post(h.url("/device_authorization"))
        .form(&[("client_id", "wireapp"), ("scope", "openid profile")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_code = codes["user_code"].as_str().unwrap().to_owned();
    let page = h
        .get_in(
            Some(&cookie),
            "/device",
            &[("user_code", user_code.clone())],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signed in as <strong>@alice_wire"));
    assert!(!page.contains(r#"name="password""#));
    let token = field_value(&page, "csrf");
    let decide = |fields: Vec<(&'static str, String)>| {
        let (h, cookie) = (&h, &cookie);
        async move { h.post_in(cookie, "/device", &fields).await }
    };
    let forged = decide(vec![
        ("user_code", user_code.clone()),
        ("action", "approve".into()),
    ])
    .await;
    assert_eq!(
        forged.status(),
        401,
        "without the form token the session does not count"
    );
    let approved = decide(vec![
        ("user_code", user_code),
        ("action", "approve".into()),
        ("csrf", token),
    ])
    .await;
    assert_eq!(approved.status(), 200);
    assert!(approved.text().await.unwrap().contains("is connected"));
    let tokens: Value = h
        .token_request(
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:device_code".into(),
                ),
                ("device_code", codes["device_code"].as_str().unwrap().into()),
                ("client_id", "wireapp".into()),
            ],
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let id = h.verified_id_token(&tokens).await;
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
}

#[tokio::test]
async fn a_session_ended_while_a_hundred_requests_use_it_stays_ended() {
    let h = std::sync::Arc::new(Harness::start().await);
    let (cookie, _) = h.password_session().await;
    // Every request touches the session (more than a minute since the last use).
    h.clock.advance(120);
    let mut uses = Vec::new();
    for _ in 0..100 {
        let (h, cookie) = (h.clone(), cookie.clone());
        uses.push(tokio::spawn(async move {
            h.authorize_in(Some(&cookie), &authorize_params(&Pkce::new()), &[])
                .await
                .status()
                .as_u16()
        }));
    }
    let page = h.get_in(Some(&cookie), "/logout", &[]).await;
    let token = field_value(&page.text().await.unwrap(), "csrf");
    let logout = h.post_in(&cookie, "/logout", &[("csrf", token)]).await;
    assert_eq!(logout.status(), 200);
    for used in uses {
        let status = used.await.unwrap();
        assert!(status == 303 || status == 200, "{status}");
    }
    assert!(
        !h.signed_in(&cookie).await,
        "no touch brought the session back"
    );
}

#[tokio::test]
async fn forms_posted_from_another_site_are_refused_and_start_no_session() {
    let h = Harness::start().await;
    let mut login = params_for(&Pkce::new(), "wireapp", "openid");
    login.push(("username", "alice_wire".into()));
    login.push(("password", h.password.clone()));
    let account_login = vec![
        ("username", "alice_wire".to_owned()),
        ("password", h.password.clone()),
        ("return_to", "/account".into()),
    ];
    for (path, fields) in [
        ("/authorize", &login),
        ("/account/login", &account_login),
        ("/device", &account_login),
        ("/logout", &Vec::new()),
    ] {
        for (name, value) in [
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let response = h
                .client
                .post(h.url(path))
                .header(name, value)
                .form(fields)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{path} with {name}: {value}");
            assert!(response.headers().get("set-cookie").is_none(), "{path}");
        }
    }
    // From our own page (its origin), the same login works and starts a session.
    let ours = h
        .client
        .post(h.url("/account/login"))
        .header("origin", h.base.clone())
        .header("sec-fetch-site", "same-origin")
        .form(&account_login)
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), 303);
    session_cookie(&ours);
}

#[tokio::test]
async fn a_browser_confirms_before_a_public_loopback_client_gets_a_code_from_its_session() {
    let h = Harness::start().await;
    let (cookie, _) = h.password_session().await;
    let params = authorize_params(&Pkce::new());
    let browser = |extra: &'static [(&'static str, &'static str)]| {
        let mut request = h
            .client
            .get(h.url("/authorize"))
            .query(&params)
            .query(extra)
            .header("cookie", &cookie)
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document");
        request = request.header("sec-fetch-site", "cross-site");
        async move { request.send().await.unwrap() }
    };
    let page = browser(&[]).await;
    assert_eq!(page.status(), 200, "a page, not a silent code");
    let page = page.text().await.unwrap();
    assert!(page.contains("Continue to <strong>wireapp</strong> as <strong>@alice_wire"));
    let silent = browser(&[("prompt", "none")]).await;
    assert_eq!(location_params(&silent)["error"], "interaction_required");

    let mut fields: Vec<(&str, String)> = params.clone();
    let post = |fields: Vec<(&'static str, String)>| {
        let (h, cookie) = (&h, &cookie);
        async move { h.post_in(cookie, "/authorize/continue", &fields).await }
    };
    assert_eq!(
        post(fields.clone()).await.status(),
        403,
        "without the form token"
    );
    fields.push(("csrf", field_value(&page, "csrf")));
    let confirmed = post(fields).await;
    assert_eq!(confirmed.status(), 303);
    assert!(location_params(&confirmed).contains_key("code"));
}

#[tokio::test]
async fn a_consent_page_answered_after_sign_out_gives_no_code() {
    let h = Harness::start().await;
    let (cookie, _) = h.password_session().await;
    let webapp = params_for(&Pkce::new(), "demo-webapp", "openid profile");
    let page = h.authorize_in(Some(&cookie), &webapp, &[]).await;
    let ticket = ticket_of(&page.text().await.unwrap());
    let confirm = h.get_in(Some(&cookie), "/logout", &[]).await;
    let token = field_value(&confirm.text().await.unwrap(), "csrf");
    assert_eq!(
        h.post_in(&cookie, "/logout", &[("csrf", token)])
            .await
            .status(),
        200
    );
    let answered = h.answer_consent(&ticket, "allow").await;
    assert_eq!(answered.status(), 400);
    assert!(
        answered
            .text()
            .await
            .unwrap()
            .contains("your session ended")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_simultaneous_logins_of_one_user_leave_at_most_the_cap_of_sessions() {
    let h = std::sync::Arc::new(
        Harness::start_with(|c| {
            c.sessions.max_per_user = 5;
            c.password_checks.queue = 128;
            c.password_checks.per_address = 128;
            c.password_checks.per_user = 128;
        })
        .await,
    );
    let logins: Vec<_> = (0..100)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                let fields = [
                    ("username", "alice_wire".to_owned()),
                    ("password", h.password.clone()),
                    ("return_to", "/account".into()),
                ];
                let response = h
                    .client
                    .post(h.url("/account/login"))
                    .form(&fields)
                    .send()
                    .await
                    .unwrap();
                (response.status() == 303).then(|| session_cookie(&response))
            })
        })
        .collect();
    let mut cookies = Vec::new();
    for login in logins {
        cookies.extend(login.await.unwrap());
    }
    assert!(
        cookies.len() >= 5,
        "only {} logins went through",
        cookies.len()
    );
    let mut live = 0;
    for cookie in &cookies {
        live += usize::from(h.signed_in(cookie).await);
    }
    assert_eq!(live, 5, "the cap, of {} sessions started", cookies.len());
}
