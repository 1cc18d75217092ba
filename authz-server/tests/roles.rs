//! Roles and groups (issue 19 item 1): an operator (or the admin surface) gives an account roles
//! and groups; with the `roles` scope the access token (RFC 9068 §7.2), the ID token and
//! `/userinfo` carry them, and a refresh carries what the account holds then; the admin surface
//! (`/admin/users`) admits a token whose `roles` holds `admin` and whose user still has it, and
//! refuses every other with 403 `insufficient_scope`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authz_server::oauth_clients::{self, OAuthClient};
use common::*;
use serde_json::{Value, json};

const CONSOLE: &str = "console";

fn seed(store: &dyn authz_server::store::Store) {
    oauth_clients::add(
        store,
        &OAuthClient {
            id: CONSOLE.into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            secret_sha256: None,
            consent_required: false,
            jwks: None,
            scopes: Some(vec!["openid".into(), "profile".into(), "roles".into()]),
            post_logout_redirect_uris: Vec::new(),
            token_exchange: Vec::new(),
            remote_auth: Vec::new(),
            jwt_bearer: Vec::new(),
        },
    )
    .unwrap();
    add_user(store, "bob", "bob-password-1");
    add_user(store, "carol", "carol-password-1");
    assert!(
        authz_server::users::set_authorization(
            store,
            "carol",
            Some(&["admin".to_owned()]),
            Some(&["staff".to_owned(), "ops".to_owned()]),
        )
        .unwrap()
        .is_some()
    );
}

impl Harness {
    async fn console_tokens(&self, user: &str, password: &str, scope: &str) -> Value {
        self.login_as(CONSOLE, scope, user, password).await
    }

    async fn admin_users(&self, access_token: &str) -> reqwest::Response {
        self.client
            .get(self.url("/admin/users"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    async fn set_authorization(
        &self,
        access_token: &str,
        handle: &str,
        body: Value,
    ) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/admin/users/{handle}/authorization")))
            .bearer_auth(access_token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// A 403 `insufficient_scope` whose description says `why`.
async fn assert_refused(response: reqwest::Response, why: &str) {
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let body = response.text().await.unwrap();
    assert!(body.contains(why), "{body}");
}

#[tokio::test]
async fn roles_and_groups_travel_in_tokens_with_the_roles_scope_only() {
    let h = Harness::start_seeded(|_| {}, seed).await;
    let tokens = h
        .console_tokens("carol", "carol-password-1", "openid profile roles")
        .await;
    let at = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["roles"], json!(["admin"]));
    assert_eq!(at["groups"], json!(["ops", "staff"]));
    let id = h.verified_id_token(&tokens).await;
    assert_eq!(id["roles"], json!(["admin"]));
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
    assert_eq!(info["groups"], json!(["ops", "staff"]));
    // Without the scope, nothing of it.
    let plain = h
        .console_tokens("carol", "carol-password-1", "openid profile")
        .await;
    let at = claims_of(plain["access_token"].as_str().unwrap());
    assert!(
        at.get("roles").is_none() && at.get("groups").is_none(),
        "{at}"
    );
    let metadata = h.get_json("/.well-known/openid-configuration").await;
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"roles".into())
    );
}

#[tokio::test]
async fn the_admin_surface_admits_the_admin_role_and_a_refresh_carries_new_roles() {
    let h = Harness::start_seeded(|_| {}, seed).await;
    let admin = h
        .console_tokens("carol", "carol-password-1", "openid roles")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed: Value = h.admin_users(&admin).await.json().await.unwrap();
    let handles: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["handle"].as_str().unwrap())
        .collect();
    assert!(
        handles.contains(&"bob") && handles.contains(&"carol"),
        "{listed}"
    );

    // bob: a valid token with the scope, but not the role; and a token without the scope.
    let bob = h
        .console_tokens("bob", "bob-password-1", "openid roles")
        .await;
    let bob_access = bob["access_token"].as_str().unwrap().to_owned();
    assert_refused(h.admin_users(&bob_access).await, "need the role admin").await;
    let scopeless = h
        .console_tokens("carol", "carol-password-1", "openid")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_refused(h.admin_users(&scopeless).await, "roles scope").await;

    // The admin makes bob an admin: bob's refreshed token carries the role and is admitted.
    let bad = h
        .set_authorization(&admin, "bob", json!({"roles": ["has space"]}))
        .await;
    assert_eq!(bad.status(), 400);
    let set = h
        .set_authorization(&admin, "bob", json!({"roles": ["admin", "admin"]}))
        .await;
    assert_eq!(set.status(), 200);
    assert_eq!(
        set.json::<Value>().await.unwrap()["roles"],
        json!(["admin"])
    );
    assert_refused(h.admin_users(&bob_access).await, "need the role admin").await;
    let refreshed: Value = h
        .token_request(
            &[
                ("grant_type", "refresh_token".into()),
                (
                    "refresh_token",
                    bob["refresh_token"].as_str().unwrap().into(),
                ),
                ("client_id", CONSOLE.into()),
            ],
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let bob_admin = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&bob_admin)["roles"], json!(["admin"]));
    assert_eq!(h.admin_users(&bob_admin).await.status(), 200);

    // A role taken away counts at once, whatever the token still says.
    let taken = h
        .set_authorization(&bob_admin, "carol", json!({"roles": []}))
        .await;
    assert_eq!(taken.status(), 200);
    assert_refused(h.admin_users(&admin).await, "need the role admin").await;
    assert_eq!(h.admin_users(&bob_admin).await.status(), 200);
    assert_eq!(
        h.set_authorization(&bob_admin, "nobody", json!({"roles": []}))
            .await
            .status(),
        404
    );
}

/// A login of `login` to the console through the upstream; the access token's claims.
async fn console_login_through_upstream(f: &common::upstream::Federation, login: &str) -> Value {
    let pkce = Pkce::new();
    let at_upstream = f
        .to_upstream_for(&params_for(&pkce, CONSOLE, "openid roles"))
        .await;
    let callback = f.upstream_login(at_upstream, login, false).await;
    let response = f.get(&callback).await;
    let code = location_params(&response)["code"].clone();
    let tokens: Value =
        f.h.token_request(&token_form_for(CONSOLE, &code, &pkce.verifier), None)
            .await
            .json()
            .await
            .unwrap();
    claims_of(tokens["access_token"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_from_an_upstream_claim_follow_the_account_at_every_login() {
    use common::upstream::{Federation, Setup};
    let setup = Setup::oidc_with("create", "[claims]\ngroups = \"groups\"\n");
    let f = Federation::launch(setup, |_| {}, seed).await;
    // A Keycloak-style `groups` claim: ["staff", "ops"] for opsi at the upstream.
    let at = console_login_through_upstream(&f, "opsi").await;
    assert_eq!(at["groups"], json!(["ops", "staff"]));
    assert!(at.get("roles").is_none(), "roles are not mapped here: {at}");

    // An admin changes opsi's groups here; the next login through the upstream puts back what
    // the upstream says.
    let admin =
        f.h.console_tokens("carol", "carol-password-1", "openid roles")
            .await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    let set =
        f.h.set_authorization(&admin, "opsi", json!({"groups": ["visitors"]}))
            .await;
    assert_eq!(
        set.json::<Value>().await.unwrap()["groups"],
        json!(["visitors"])
    );
    f.sign_out().await;
    let at = console_login_through_upstream(&f, "opsi").await;
    assert_eq!(at["groups"], json!(["ops", "staff"]));
    let (store, audit) = f.stopped_store().await;
    let user = authz_server::users::by_handle(store.as_ref(), "opsi")
        .unwrap()
        .unwrap();
    assert_eq!(user.groups, ["ops", "staff"]);
    assert_eq!(audit.matches("\"user.authorization_set\"").count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_gives_admin_only_when_allowed_and_takes_roles_away_by_leaving_the_claim_out() {
    use common::upstream::{Federation, Setup};
    // Roles from the `groups` claim, allowed_roles not set: `admin` is never taken.
    let f = Federation::launch(
        Setup::oidc_with("create", "[claims]\nroles = \"groups\"\n"),
        |_| {},
        seed,
    )
    .await;
    let at = console_login_through_upstream(&f, "adm1").await;
    assert_eq!(at["roles"], json!(["staff"]));
    drop(f);

    // Allowed explicitly: admin, until the upstream stops sending the claim.
    let f = Federation::launch(
        Setup::oidc_with(
            "create",
            "[claims]\nroles = \"groups\"\nallowed_roles = [\"admin\", \"staff\"]\n",
        ),
        |_| {},
        seed,
    )
    .await;
    let at = console_login_through_upstream(&f, "adm2").await;
    assert_eq!(at["roles"], json!(["admin", "staff"]));
    f.idp
        .test_route(reqwest::Method::POST, "/test/drop-groups")
        .await;
    f.sign_out().await;
    let at = console_login_through_upstream(&f, "adm2").await;
    assert!(at.get("roles").is_none(), "{at}");
    let (store, _) = f.stopped_store().await;
    let user = authz_server::users::by_handle(store.as_ref(), "adm2")
        .unwrap()
        .unwrap();
    assert!(user.roles.is_empty(), "{:?}", user.roles);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_simultaneous_changes_all_land_and_no_body_is_read_before_the_token() {
    let h = std::sync::Arc::new(Harness::start_seeded(|_| {}, seed).await);
    let unauthenticated = h
        .client
        .put(h.url("/admin/users/bob/authorization"))
        .json(&json!({"nope": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let admin = h
        .console_tokens("carol", "carol-password-1", "openid roles")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let changes: Vec<_> = (0..100)
        .map(|i| {
            let (h, admin) = (h.clone(), admin.clone());
            tokio::spawn(async move {
                let body = json!({"groups": [format!("g{i}")]});
                let response = h.set_authorization(&admin, "bob", body).await;
                let status = response.status().as_u16();
                let groups = response.json::<Value>().await.unwrap()["groups"].clone();
                (status, groups, i)
            })
        })
        .collect();
    for change in changes {
        let (status, groups, i) = change.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            groups,
            json!([format!("g{i}")]),
            "each answer is what it wrote"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_login_link_gives_the_account_the_mapped_groups() {
    use common::upstream::{Federation, Setup};
    let f = Federation::launch(
        Setup::oidc_with("link", "[claims]\ngroups = \"groups\"\n"),
        |_| {},
        seed,
    )
    .await;
    // adm3 at the upstream (groups ["staff", "admin"]) is linked to carol's account (seeded
    // with ["ops", "staff"]) by carol's password.
    let at_upstream = f
        .to_upstream_for(&params_for(&Pkce::new(), CONSOLE, "openid roles"))
        .await;
    let callback = f.upstream_login(at_upstream, "adm3", false).await;
    let page = f.get(&callback).await.text().await.unwrap();
    let linked = f
        .browser
        .post(f.h.url("/upstream/link"))
        .form(&[
            ("ticket", ticket_of(&page)),
            ("username", "carol".to_owned()),
            ("password", "carol-password-1".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), 303);
    let (store, _) = f.stopped_store().await;
    let carol = authz_server::users::by_handle(store.as_ref(), "carol")
        .unwrap()
        .unwrap();
    assert_eq!(
        carol.groups,
        ["admin", "staff"],
        "the upstream's groups replace the seeded ones"
    );
    assert_eq!(carol.roles, ["admin"], "roles are not mapped here");
}
