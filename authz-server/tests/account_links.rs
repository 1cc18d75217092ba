//! The account page with two upstreams (two node-oidc-provider processes on 127.0.0.1): a user
//! made by a login through the first links the second from the account page, sees both listed
//! with their identities, unlinks one, and cannot unlink the last way in — not even with a
//! hundred unlink requests racing; an identity already linked to another account is not
//! linked again; a form without the session's token changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::upstream::*;
use common::*;

/// The second upstream's `[[upstream]]`.
fn partner_upstream(issuer: &str, secret_file: &std::path::Path) -> String {
    format!(
        r#"
id = "partner"
display_name = "Partner"
kind = "oidc"
issuer = "{issuer}"
client_id = "{UPSTREAM_CLIENT_ID}"
client_secret_file = "{}"
first_login = "create"
"#,
        secret_file.display()
    )
}

impl Federation {
    async fn account(&self) -> String {
        let response = self.get(&self.h.url("/account")).await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    async fn post_account(&self, path: &str, fields: &[(&str, String)]) -> reqwest::Response {
        self.browser
            .post(self.h.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_links_lists_and_unlinks_but_never_the_last_way_in() {
    let mut partner = Idp::spawn(None).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("partner-secret");
    server_kit::files::write_private(&secret, UPSTREAM_SECRET.as_bytes()).unwrap();
    let partner_toml = partner_upstream(&partner.issuer, &secret);
    let f = Federation::start(None, "create", |c| {
        c.upstream.push(toml::from_str(&partner_toml).unwrap());
    })
    .await;
    partner.configure(&f.h.url("/upstream/callback")).await;

    // dora's account is made by her login through the first upstream.
    let pkce = Pkce::new();
    let response = f.log_in(&pkce, "dora").await;
    let dora = f.tokens_of(&response, &pkce).await["sub"].clone();
    let page = f.account().await;
    assert!(page.contains("Signed in as <strong>@dora"), "{page}");
    assert!(page.contains("Corp &lt;IdP&gt; (linked"));
    assert!(
        !page.contains("<li>Password</li>"),
        "an upstream-made account has none"
    );

    // A form without the session's token is refused.
    let forged = f
        .post_account("/account/link", &[("upstream", "partner".into())])
        .await;
    assert_eq!(forged.status(), 403);

    // Link the second upstream: off to its login, back to the account page.
    let token = form_field(&page, "Link Partner", "csrf");
    let start = f
        .post_account(
            "/account/link",
            &[("upstream", "partner".into()), ("csrf", token.clone())],
        )
        .await;
    assert_eq!(start.status(), 303);
    let at_partner = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(at_partner.starts_with(&partner.issuer), "{at_partner}");
    let callback = f.upstream_login(at_partner, "dora-at-partner", false).await;
    let back = f.get(&callback).await;
    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], "/account");
    let page = f.account().await;
    assert!(page.contains("Partner (linked"), "{page}");
    assert!(page.contains("<code>dora-at-partner</code>"));
    assert!(!page.contains("Link Partner"), "one link per upstream");

    // A hundred unlinks of both, at once: the account keeps at least one way in.
    let mut racing = Vec::new();
    for i in 0..100 {
        let browser = f.browser.clone();
        let url = f.h.url("/account/unlink");
        let upstream = if i % 2 == 0 { "corp" } else { "partner" };
        let form = [("upstream", upstream.to_owned()), ("csrf", token.clone())];
        racing.push(tokio::spawn(async move {
            browser
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut unlinked = 0;
    for race in racing {
        match race.await.unwrap() {
            303 => unlinked += 1,
            409 => {}
            other => panic!("unlink answered {other}"),
        }
    }
    assert_eq!(unlinked, 1, "exactly one of the two links went");
    let page = f.account().await;
    let left = page.matches("(linked").count();
    assert_eq!(left, 1, "{page}");

    // The last way in stays, with the reason.
    let last = if page.contains("Partner (linked") {
        "partner"
    } else {
        "corp"
    };
    let refused = f
        .post_account(
            "/account/unlink",
            &[("upstream", last.into()), ("csrf", token.clone())],
        )
        .await;
    assert_eq!(refused.status(), 409);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("the last way to sign in to your account")
    );

    // Another account (alice_wire, by password) cannot link dora's identity at that upstream.
    f.sign_out().await;
    let login = f
        .post_account(
            "/account/login",
            &[
                ("username", "alice_wire".into()),
                ("password", f.h.password.clone()),
                ("return_to", "/account".into()),
            ],
        )
        .await;
    assert_eq!(login.status(), 303);
    let page = f.account().await;
    assert!(page.contains("Signed in as <strong>@alice_wire"));
    let button = if last == "partner" {
        "Link Partner"
    } else {
        "Link Corp &lt;IdP&gt;"
    };
    let token = form_field(&page, button, "csrf");
    let start = f
        .post_account(
            "/account/link",
            &[("upstream", last.into()), ("csrf", token)],
        )
        .await;
    let url = start.headers()["location"].to_str().unwrap().to_owned();
    let login = if last == "partner" {
        "dora-at-partner"
    } else {
        "dora"
    };
    let callback = f.upstream_login(url, login, false).await;
    let refused = f.get(&callback).await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("identity is already linked to another account")
    );
    let (store, audit) = f.stopped_store().await;
    let links =
        authz_server::store::upstream_links::of_user(store.as_ref(), dora.as_str().unwrap())
            .unwrap();
    assert_eq!(links.len(), 1, "dora keeps her last link: {links:?}");
    assert_eq!(audit.matches("\"upstream.unlinked\"").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_needs_a_recent_login_and_the_session_that_started_it() {
    let f = Federation::start(None, "create", |_| {}).await;
    let credentials = [
        ("username", "alice_wire".to_owned()),
        ("password", f.h.password.clone()),
        ("return_to", "/account".into()),
    ];
    let sign_in = || f.post_account("/account/login", &credentials);
    assert_eq!(sign_in().await.status(), 303);
    // Eleven minutes after the login, linking asks for a new login first.
    f.h.clock.advance(660);
    let page = f.account().await;
    let stale = f
        .post_account(
            "/account/link",
            &[
                ("upstream", "corp".into()),
                ("csrf", form_field(&page, "Link Corp", "csrf")),
            ],
        )
        .await;
    assert_eq!(stale.status(), 401);
    assert!(stale.text().await.unwrap().contains("sign in again first"));

    // Signed in again, a link starts; the browser signs out before it comes back: not linked.
    assert_eq!(sign_in().await.status(), 303);
    let page = f.account().await;
    let start = f
        .post_account(
            "/account/link",
            &[
                ("upstream", "corp".into()),
                ("csrf", form_field(&page, "Link Corp", "csrf")),
            ],
        )
        .await;
    assert_eq!(start.status(), 303);
    let at_upstream = start.headers()["location"].to_str().unwrap().to_owned();
    f.sign_out().await;
    let callback = f.upstream_login(at_upstream, "eve-at-corp", false).await;
    let refused = f.get(&callback).await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("the session that started this link has ended")
    );
    let (store, _) = f.stopped_store().await;
    let alice = authz_server::users::by_handle(store.as_ref(), "alice_wire")
        .unwrap()
        .unwrap();
    assert!(
        authz_server::store::upstream_links::of_user(store.as_ref(), &alice.id)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_of_one_upstream_racing_from_ten_browsers_leave_at_most_one() {
    let f = Federation::start(None, "create", |_| {}).await;
    // Ten browsers signed in to alice_wire's account, each with a link to Corp waiting at its
    // callback, for ten different Corp identities.
    let mut callbacks = Vec::new();
    for i in 0..10 {
        let browser = common::upstream::browser(&f.h);
        let post = |path: &str, fields: Vec<(&'static str, String)>| {
            browser.post(f.h.url(path)).form(&fields).send()
        };
        let login = post(
            "/account/login",
            vec![
                ("username", "alice_wire".into()),
                ("password", f.h.password.clone()),
                ("return_to", "/account".into()),
            ],
        )
        .await
        .unwrap();
        assert_eq!(login.status(), 303);
        let page = browser
            .get(f.h.url("/account"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = form_field(&page, "Link Corp", "csrf");
        let start = post(
            "/account/link",
            vec![("upstream", "corp".into()), ("csrf", csrf)],
        )
        .await
        .unwrap();
        let at_upstream = start.headers()["location"].to_str().unwrap().to_owned();
        let callback = f
            .upstream_login_in(&browser, at_upstream, &format!("racer{i}"), false)
            .await;
        callbacks.push((browser, callback));
    }
    let answers: Vec<_> = callbacks
        .into_iter()
        .map(|(browser, callback)| {
            tokio::spawn(async move { browser.get(callback).send().await.unwrap().status() })
        })
        .collect();
    let mut linked = 0;
    for answer in answers {
        let status = answer.await.unwrap().as_u16();
        assert!(status == 303 || status == 400, "{status}");
        linked += usize::from(status == 303);
    }
    let (store, _) = f.stopped_store().await;
    let alice = authz_server::users::by_handle(store.as_ref(), "alice_wire")
        .unwrap()
        .unwrap();
    let links = authz_server::store::upstream_links::of_user(store.as_ref(), &alice.id).unwrap();
    assert!(links.len() <= 1, "{links:?}");
    assert_eq!(links.len(), linked, "every link answered as made is there");
}
