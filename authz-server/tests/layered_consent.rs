//! Layered consent (issue 19 item 5): the consent page lists, scope by scope, the claims a
//! third-party client would get with their values; the user unticks the optional ones to
//! withhold them and the tokens carry only the rest; the answer is remembered per client (asked
//! nothing next time, still withheld) until the user withdraws it on the account page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authz_server::oauth_clients::{self, OAuthClient};
use authz_server::users::{Email, NewUser};
use common::*;
use serde_json::{Value, json};

const STUDIO: &str = "studio";
const SCOPE: &str = "openid profile email roles";

fn seed(store: &dyn authz_server::store::Store) {
    oauth_clients::add(
        store,
        &OAuthClient {
            id: STUDIO.into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            secret_sha256: None,
            consent_required: true,
            jwks: None,
            scopes: Some(SCOPE.split(' ').map(str::to_owned).collect()),
            post_logout_redirect_uris: Vec::new(),
            token_exchange: Vec::new(),
            remote_auth: Vec::new(),
            jwt_bearer: Vec::new(),
        },
    )
    .unwrap();
    authz_server::users::add_with_email(
        store,
        &NewUser {
            handle: "dana",
            name: "Dana Example",
            team: None,
            domain: DOMAIN,
            password: &proto::secret::SecretString::new("dana-password-1"),
        },
        Some(Email {
            address: "dana@example.test".into(),
            verified: true,
        }),
    )
    .unwrap();
    authz_server::users::set_authorization(store, "dana", Some(&["editor".to_owned()]), None)
        .unwrap()
        .unwrap();
}

/// A user in one browser (its cookies kept).
struct Browser<'h> {
    h: &'h Harness,
    client: reqwest::Client,
}

impl Browser<'_> {
    /// `/authorize` for the studio asking `scope`: with the password the first time, inside the
    /// session after that.
    async fn authorize(&self, pkce: &Pkce, scope: &str, password: bool) -> reqwest::Response {
        self.authorize_with(pkce, scope, password, &[]).await
    }

    /// [`Self::authorize`] with `extra` parameters.
    async fn authorize_with(
        &self,
        pkce: &Pkce,
        scope: &str,
        password: bool,
        extra: &[(&'static str, &str)],
    ) -> reqwest::Response {
        let mut params = params_for(pkce, STUDIO, scope);
        params.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        if password {
            params.push(("username", "dana".into()));
            params.push(("password", "dana-password-1".into()));
            return self
                .client
                .post(self.h.url("/authorize"))
                .form(&params)
                .send()
                .await
                .unwrap();
        }
        self.client
            .get(self.h.url("/authorize"))
            .query(&params)
            .send()
            .await
            .unwrap()
    }

    async fn answer(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.h.url("/authorize/consent"))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    async fn page(&self, path: &str) -> String {
        let page = self.client.get(self.h.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        page.text().await.unwrap()
    }
}

/// The tokens for the code in a redirect back to the client.
async fn redeem(h: &Harness, redirect: reqwest::Response, pkce: &Pkce) -> Value {
    assert_eq!(redirect.status(), 303);
    let code = location_params(&redirect)["code"].clone();
    let response = h
        .token_request(&token_form_for(STUDIO, &code, &pkce.verifier), None)
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn userinfo(h: &Harness, tokens: &Value) -> Value {
    h.client
        .get(h.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_user_withholds_optional_claims_and_the_choice_holds_until_withdrawn() {
    let h = Harness::start_seeded(|_| {}, seed).await;
    let browser = Browser {
        h: &h,
        client: common::upstream::browser(&h),
    };

    // The page lists what each scope releases, with the values; openid cannot be unticked.
    let pkce = Pkce::new();
    let page = browser.authorize(&pkce, SCOPE, true).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    for shown in [
        "Dana Example",
        "dana@example.test",
        "editor",
        "See your email address",
    ] {
        assert!(page.contains(shown), "{shown} not on {page}");
    }
    for optional in ["profile", "email", "roles"] {
        assert!(
            page.contains(&format!(r#"name="scope" value="{optional}" checked"#)),
            "{optional}"
        );
    }
    assert!(!page.contains(r#"name="scope" value="openid""#), "{page}");

    // Email unticked: the tokens and userinfo carry everything else, no email.
    let ticket = ticket_of(&page);
    let allowed = browser
        .answer(&[
            ("ticket", &ticket),
            ("choice", "1"),
            ("scope", "profile"),
            ("scope", "roles"),
            ("action", "allow"),
        ])
        .await;
    let tokens = redeem(&h, allowed, &pkce).await;
    assert_eq!(tokens["scope"], "openid profile roles");
    let id = claims_of(tokens["id_token"].as_str().unwrap());
    let at = claims_of(tokens["access_token"].as_str().unwrap());
    let info = userinfo(&h, &tokens).await;
    for claims in [&id, &info] {
        assert_eq!(claims["name"], "Dana Example", "{claims}");
        assert!(claims.get("email").is_none(), "{claims}");
    }
    assert_eq!(at["roles"], json!(["editor"]));
    assert_eq!(at["scope"], "openid profile roles");

    // Remembered: the same request asks nothing and still leaves email out.
    let pkce = Pkce::new();
    let again = redeem(&h, browser.authorize(&pkce, SCOPE, false).await, &pkce).await;
    assert_eq!(again["scope"], "openid profile roles");
    assert!(userinfo(&h, &again).await.get("email").is_none());

    // A request for email alone (besides openid) is answered by the remembered choice too.
    let pkce = Pkce::new();
    let alone = redeem(
        &h,
        browser.authorize(&pkce, "openid email", false).await,
        &pkce,
    )
    .await;
    assert_eq!(alone["scope"], "openid");

    // prompt=consent asks again; a forged answer naming a scope the request did not ask for
    // gets nothing more than what was asked and ticked.
    let pkce = Pkce::new();
    let page = browser
        .authorize_with(&pkce, "openid email", false, &[("prompt", "consent")])
        .await;
    assert_eq!(page.status(), 200);
    let forged = browser
        .answer(&[
            ("ticket", &ticket_of(&page.text().await.unwrap())),
            ("choice", "1"),
            ("scope", "offline_access"),
            ("action", "allow"),
        ])
        .await;
    assert_eq!(redeem(&h, forged, &pkce).await["scope"], "openid");

    // The account page shows the answer, and withdrawing it makes the next request ask again.
    let account = browser.page("/account").await;
    assert!(account.contains("<strong>studio</strong>"), "{account}");
    assert!(account.contains("withheld: email"), "{account}");
    let withdraw = browser
        .client
        .post(h.url("/account/consents/withdraw"))
        .form(&[
            ("csrf", form_field(&account, "Withdraw", "csrf")),
            ("client", form_field(&account, "Withdraw", "client")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(withdraw.status(), 303);
    let after = userinfo(&h, &again).await;
    assert_eq!(
        after["error"], "invalid_token",
        "a withdrawn grant's token stops working"
    );
    assert!(
        !browser
            .page("/account")
            .await
            .contains("<strong>studio</strong>")
    );
    let page = browser.authorize(&Pkce::new(), SCOPE, false).await;
    assert_eq!(page.status(), 200, "asked again after the withdrawal");
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"name="scope" value="email" checked"#));

    // Unticking everything optional of a request without openid is a denial.
    let page = browser
        .authorize(&Pkce::new(), "profile email", false)
        .await;
    let denied = browser
        .answer(&[
            ("ticket", &ticket_of(&page.text().await.unwrap())),
            ("choice", "1"),
            ("action", "allow"),
        ])
        .await;
    assert_eq!(denied.status(), 303);
    assert_eq!(location_params(&denied)["error"], "access_denied");
}

/// The studio asks for a device authorization of `scope` (it is a public client).
async fn start_device(h: &Harness, scope: &str) -> Value {
    let response = h
        .client
        .post(h.url("/device_authorization"))
        .form(&[("client_id", STUDIO), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The device flow does not release a scope the user withheld at `/authorize`: approving the
/// code on the bare verification form (which showed no scopes) is not an approval of the scope
/// the user said no to; the page shows what the client asks for first.
#[tokio::test]
async fn a_device_authorization_does_not_release_a_withheld_scope_unseen() {
    let h = Harness::start_seeded(|_| {}, seed).await;
    let browser = Browser {
        h: &h,
        client: common::upstream::browser(&h),
    };
    let pkce = Pkce::new();
    let page = browser.authorize(&pkce, "openid profile email", true).await;
    let ticket = ticket_of(&page.text().await.unwrap());
    let allowed = browser
        .answer(&[
            ("ticket", &ticket),
            ("choice", "1"),
            ("scope", "profile"),
            ("action", "allow"),
        ])
        .await;
    assert_eq!(redeem(&h, allowed, &pkce).await["scope"], "openid profile");

    // The client now asks for email through the device flow; the user types the code on the
    // bare form (no scopes shown) and approves.
    let codes = start_device(&h, "openid profile email").await;
    let user_code = codes["user_code"].as_str().unwrap();
    let decided = h
        .client
        .post(h.url("/device"))
        .form(&[
            ("user_code", user_code),
            ("username", "dana"),
            ("password", "dana-password-1"),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);
    let text = decided.text().await.unwrap();
    assert!(
        text.contains("Check what the application asks for"),
        "approved a withheld scope without showing it: {text}"
    );
    assert!(text.contains("See your email address"), "{text}");
    let polled = h
        .token_request(
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:device_code".into(),
                ),
                ("device_code", codes["device_code"].as_str().unwrap().into()),
                ("client_id", STUDIO.into()),
            ],
            None,
        )
        .await;
    let body: Value = polled.json().await.unwrap();
    assert_eq!(body["error"], "authorization_pending", "{body}");
    let consent = browser.page("/account").await;
    assert!(consent.contains("withheld: email"), "{consent}");
}

/// A withdrawn consent's tokens are refused at introspection too (RFC 7662: a resource server
/// that introspects learns the token stopped working), not only at this server's endpoints.
#[tokio::test]
async fn introspection_reports_a_withdrawn_grant_inactive() {
    let h = Harness::start_seeded(|_| {}, seed).await;
    let browser = Browser {
        h: &h,
        client: common::upstream::browser(&h),
    };
    let pkce = Pkce::new();
    let page = browser.authorize(&pkce, "openid profile", true).await;
    let ticket = ticket_of(&page.text().await.unwrap());
    let allowed = browser
        .answer(&[("ticket", &ticket), ("action", "allow")])
        .await;
    let tokens = redeem(&h, allowed, &pkce).await;
    let secret = std::fs::read_to_string(h.dir.path().join("demo-service-secret")).unwrap();
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
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(at.clone()).await["active"], true);

    h.clock.advance(1);
    let account = browser.page("/account").await;
    let withdraw = browser
        .client
        .post(h.url("/account/consents/withdraw"))
        .form(&[
            ("csrf", form_field(&account, "Withdraw", "csrf")),
            ("client", form_field(&account, "Withdraw", "client")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(withdraw.status(), 303);
    assert_eq!(userinfo(&h, &tokens).await["error"], "invalid_token");
    let info = introspect(at).await;
    assert_eq!(info, json!({"active": false}), "a withdrawn grant's token");
}

/// A scope the user withholds on a later answer (`prompt=consent`) is not released any more
/// through a refresh token the client got before: the refreshed tokens carry only what the
/// user shares now.
#[tokio::test]
async fn a_scope_withheld_later_is_not_refreshed_into_new_tokens() {
    const NOTES: &str = "notes";
    let h = Harness::start_seeded(
        |_| {},
        |store| {
            seed(store);
            oauth_clients::add(
                store,
                &OAuthClient {
                    id: NOTES.into(),
                    redirect_uris: vec![REDIRECT_URI.into()],
                    secret_sha256: None,
                    consent_required: true,
                    jwks: None,
                    scopes: Some(
                        ["openid", "email", "offline_access"]
                            .map(str::to_owned)
                            .to_vec(),
                    ),
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
    let browser = common::upstream::browser(&h);
    let scope = "openid email offline_access";
    let authorize = |pkce: &Pkce, extra: &[(&'static str, &'static str)], password: bool| {
        let mut params = params_for(pkce, NOTES, scope);
        params.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        if !password {
            return browser.get(h.url("/authorize")).query(&params).send();
        }
        params.push(("username", "dana".into()));
        params.push(("password", "dana-password-1".into()));
        browser.post(h.url("/authorize")).form(&params).send()
    };
    let answer = |ticket: String, ticked: &'static [&'static str]| {
        let mut form = vec![
            ("ticket", ticket),
            ("choice", "1".to_owned()),
            ("action", "allow".to_owned()),
        ];
        form.extend(ticked.iter().map(|s| ("scope", (*s).to_owned())));
        browser.post(h.url("/authorize/consent")).form(&form).send()
    };
    let hr = &h;
    let redeem_notes = |redirect: reqwest::Response, pkce: Pkce| async move {
        assert_eq!(redirect.status(), 303);
        let code = location_params(&redirect)["code"].clone();
        let response = hr
            .token_request(&token_form_for(NOTES, &code, &pkce.verifier), None)
            .await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };

    // First everything is shared: a refresh token with email.
    let pkce = Pkce::new();
    let page = authorize(&pkce, &[], true)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first = answer(ticket_of(&page), &["email", "offline_access"])
        .await
        .unwrap();
    let first = redeem_notes(first, pkce).await;
    assert_eq!(first["scope"], scope);

    // Then the user answers again and withholds email.
    h.clock.advance(1);
    let pkce = Pkce::new();
    let page = authorize(&pkce, &[("prompt", "consent")], false)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let second = answer(ticket_of(&page), &["offline_access"]).await.unwrap();
    assert_eq!(
        redeem_notes(second, pkce).await["scope"],
        "openid offline_access"
    );

    // The old refresh token does not bring email back.
    let refreshed = h
        .token_request(
            &[
                ("grant_type", "refresh_token".into()),
                (
                    "refresh_token",
                    first["refresh_token"].as_str().unwrap().into(),
                ),
                ("client_id", NOTES.into()),
            ],
            None,
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(refreshed["scope"], "openid offline_access", "{refreshed}");
    let at = claims_of(refreshed["access_token"].as_str().unwrap());
    assert_eq!(at["scope"], "openid offline_access");
    assert!(userinfo(&h, &refreshed).await.get("email").is_none());

    // Withholding offline_access too ends the refreshing.
    h.clock.advance(1);
    let pkce = Pkce::new();
    let page = authorize(&pkce, &[("prompt", "consent")], false)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let third = answer(ticket_of(&page), &[]).await.unwrap();
    assert_eq!(redeem_notes(third, pkce).await["scope"], "openid");
    let refused = h
        .token_request(
            &[
                ("grant_type", "refresh_token".into()),
                (
                    "refresh_token",
                    refreshed["refresh_token"].as_str().unwrap().into(),
                ),
                ("client_id", NOTES.into()),
            ],
            None,
        )
        .await;
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
}

/// A permission source asked for every token (no `scopes`) releases its claims to the client
/// whatever the user unticks: the consent page says so, as it does for the sources a scope
/// gates.
#[tokio::test]
async fn the_consent_page_names_the_sources_asked_for_every_token() {
    let down = common::own_service::closed_url();
    let h = Harness::start_seeded(
        |c| {
            c.claims_source = vec![
                toml::from_str(&format!(
                    "id = \"perms\"\nurl = \"{down}\"\n[claims]\nentitlements = \"/permissions\"\n"
                ))
                .unwrap(),
                toml::from_str(&format!(
                    "id = \"tiers\"\nurl = \"{down}\"\nscopes = [\"roles\"]\n[claims]\ntier = \"/tier\"\n"
                ))
                .unwrap(),
            ]
        },
        seed,
    )
    .await;
    let browser = Browser {
        h: &h,
        client: common::upstream::browser(&h),
    };
    let page = browser
        .authorize(&Pkce::new(), SCOPE, true)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("tier from <code>tiers</code>"),
        "the gated source: {page}"
    );
    assert!(
        page.contains("entitlements from <code>perms</code>"),
        "the source asked for every token is not on the page: {page}"
    );
}
