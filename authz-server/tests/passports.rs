//! GA4GH Passports (issue 19 item 4) with node-oidc-provider as an upstream Broker that
//! releases visas at its userinfo endpoint: after a login through it, our `/userinfo` with the
//! `ga4gh_passport_v1` scope answers its two valid visas unchanged (its expired one and its
//! garbage left out), merged with our `LinkedIdentities` visa and a visa an admin asserted;
//! every one verifies with `proto::visa::verify_visa` (our JWKS for ours, the upstream's visa
//! key set for its), and a tampered, expired or untrusted one is refused. No token carries a
//! visa; a token without the scope gets no Passport; a login without visas, and unlinking the
//! identity, drop the imported ones; a visa of ours (about another user) that the upstream
//! passes on is left out; a client the operator no longer allows the scope gets no Passport
//! with the tokens it holds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use authz_server::oauth_clients::{self, OAuthClient};
use common::upstream::{Federation, Setup};
use common::*;
use proto::jwk::JwkSet;
use proto::visa::{self, TrustedIssuer, VerifiedVisa};
use serde_json::{Value, json};

const CONSOLE: &str = "console";
/// A third-party client (a data access service): users are asked before it sees a Passport.
const DAM: &str = "dam";
const PASSPORT: &str = "ga4gh_passport_v1";

/// The upstream: the claim read at its userinfo endpoint, its visas imported.
const VISAS: &str =
    "userinfo = true\nvisas = true\nscopes = \"openid profile email ga4gh_passport_v1\"\n";

fn seed(store: &dyn authz_server::store::Store) {
    oauth_clients::add(
        store,
        &OAuthClient {
            id: CONSOLE.into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            secret_sha256: None,
            consent_required: false,
            jwks: None,
            scopes: Some(vec!["openid".into(), "roles".into(), PASSPORT.into()]),
            post_logout_redirect_uris: Vec::new(),
            token_exchange: Vec::new(),
            remote_auth: Vec::new(),
            jwt_bearer: Vec::new(),
        },
    )
    .unwrap();
    oauth_clients::add(
        store,
        &OAuthClient {
            id: DAM.into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            secret_sha256: None,
            consent_required: true,
            jwks: None,
            scopes: Some(vec!["openid".into(), PASSPORT.into()]),
            post_logout_redirect_uris: Vec::new(),
            token_exchange: Vec::new(),
            remote_auth: Vec::new(),
            jwt_bearer: Vec::new(),
        },
    )
    .unwrap();
    add_user(store, "bob", "bob-password-1");
    add_user(store, "carol", "carol-password-1");
    authz_server::users::set_authorization(store, "carol", Some(&["admin".to_owned()]), None)
        .unwrap()
        .unwrap();
}

/// A login of `login` through the upstream to the console asking for `scope`; our token answer.
async fn console_login(f: &Federation, login: &str, scope: &str) -> Value {
    let pkce = Pkce::new();
    let at_upstream = f.to_upstream_for(&params_for(&pkce, CONSOLE, scope)).await;
    let callback = f.upstream_login(at_upstream, login, false).await;
    let response = f.get(&callback).await;
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let code = location_params(&response)["code"].clone();
    let answer =
        f.h.token_request(&token_form_for(CONSOLE, &code, &pkce.verifier), None)
            .await;
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

impl Harness {
    /// `/userinfo` for `access_token`.
    async fn userinfo(&self, access_token: &str) -> Value {
        let response = self
            .client
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// The Passport `/userinfo` answers for `access_token`.
    async fn passport(&self, access_token: &str) -> Vec<String> {
        let info = self.userinfo(access_token).await;
        visa::passport_visas(info.as_object().unwrap())
            .unwrap()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// An admin's (carol's) access token.
    async fn admin_token(&self) -> String {
        self.login_as(CONSOLE, "openid roles", "carol", "carol-password-1")
            .await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `POST /admin/users/{handle}/visas` with `body`.
    async fn assert_visa(&self, admin: &str, handle: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/admin/users/{handle}/visas")))
            .bearer_auth(admin)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Our issuer, trusted at our JWKS.
    async fn trusted_issuer(&self) -> TrustedIssuer {
        TrustedIssuer {
            issuer: self.base.clone(),
            jku: self.url("/jwks"),
            keys: JwkSet::from_json(&self.get_json("/jwks").await)
                .unwrap()
                .keys,
        }
    }
}

/// The upstream's visa issuer, trusted at the key set its visas name.
async fn upstream_issuer(f: &Federation) -> TrustedIssuer {
    let jku = format!("{}/test/visa-jwks", f.idp.issuer);
    let keys = f
        .idp
        .test_route(reqwest::Method::GET, "/test/visa-jwks")
        .await;
    TrustedIssuer {
        issuer: f.idp.issuer.clone(),
        jku,
        keys: JwkSet::from_json(&keys).unwrap().keys,
    }
}

/// The visas the upstream releases for `sub` (two valid, one expired, one garbage).
async fn upstream_visas(f: &Federation, sub: &str) -> Vec<String> {
    let answer = f
        .idp
        .test_route(reqwest::Method::GET, &format!("/test/visas?sub={sub}"))
        .await;
    serde_json::from_value(answer["visas"].clone()).unwrap()
}

/// The upstream's clock runs, ours (the harness's) stands still: a minute of leeway.
const LEEWAY: i64 = 60;

fn grant() -> Value {
    json!({
        "type": "ControlledAccessGrants",
        "value": "https://datasets.wire.example/DS-42",
        "source": "https://dac.wire.example/DAC-7",
        "by": "dac",
        "conditions": [[{"type": "AffiliationAndRole", "value": "const:faculty@corp.example"}]],
        "asserted": 1_700_000_000,
        "expires_at": 4_000_000_000i64,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_visas_come_back_unchanged_with_ours_and_every_one_verifies() {
    let f = Federation::launch(Setup::oidc_with("create", VISAS), |_| {}, seed).await;
    let tokens = console_login(&f, "vis1", &format!("openid {PASSPORT}")).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let user_id = claims_of(&access)["sub"].as_str().unwrap().to_owned();

    // An admin asserts a grant for vis1; a LinkedIdentities visa cannot be asserted.
    let admin = f.h.admin_token().await;
    let added = f.h.assert_visa(&admin, "vis1", &grant()).await;
    assert_eq!(added.status(), 201);
    let refused =
        f.h.assert_visa(
            &admin,
            "vis1",
            &json!({"type": "LinkedIdentities", "value": "a,b", "source": "https://x.example",
                    "expires_at": 4_000_000_000i64}),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let not_admin = f.h.assert_visa(&access, "vis1", &grant()).await;
    assert_eq!(
        not_admin.status(),
        403,
        "the user's own token is no admin's"
    );

    let passport = f.h.passport(&access).await;
    let released = upstream_visas(&f, "vis1").await;
    assert_eq!(passport.len(), 4, "{passport:#?}");
    // The upstream's two valid visas, byte for byte; not its expired one nor its garbage.
    assert_eq!(passport[2..], released[..2]);

    let trusted = [f.h.trusted_issuer().await, upstream_issuer(&f).await];
    let now = f.h.now();
    let verified: Vec<VerifiedVisa> = passport
        .iter()
        .map(|v| visa::verify_visa(v, &trusted, now, LEEWAY).unwrap())
        .collect();
    let ours = &verified[0].claims;
    assert_eq!(ours.iss, f.h.base);
    assert_eq!(ours.sub, user_id);
    assert_eq!(ours.visa.visa_type, "LinkedIdentities");
    assert_eq!(ours.visa.by.as_deref(), Some("system"));
    assert_eq!(ours.visa.source, f.h.base);
    assert_eq!(
        visa::parse_linked_identities(&ours.visa.value).unwrap(),
        [("vis1".to_owned(), f.idp.issuer.clone())]
    );
    let asserted = &verified[1].claims;
    assert_eq!(
        (asserted.iss.as_str(), asserted.sub.as_str()),
        (f.h.base.as_str(), user_id.as_str())
    );
    assert_eq!(asserted.visa.visa_type, "ControlledAccessGrants");
    assert_eq!(asserted.visa.asserted, 1_700_000_000);
    assert_eq!(
        asserted.visa.conditions,
        Some(grant()["conditions"].clone())
    );
    assert_eq!(asserted.exp, now + 900, "one access-token lifetime");
    // The grant holds on the upstream's AffiliationAndRole visa (faculty@corp.example).
    let objects: Vec<&visa::VisaObject> = verified.iter().map(|v| &v.claims.visa).collect();
    assert!(visa::conditions_met(&asserted.visa, &objects));
    assert!(!visa::conditions_met(&asserted.visa, &objects[..2]));
    for imported in &verified[2..] {
        assert_eq!(imported.claims.iss, f.idp.issuer);
        assert_eq!(imported.claims.sub, "vis1");
    }
    let header = proto::jws::UnverifiedJws::from_compact(&passport[0]).unwrap();
    assert_eq!(header.header().typ(), Some("vnd.ga4gh.visa+jwt"));
    assert_eq!(header.header().str("jku"), Some(f.h.url("/jwks").as_str()));

    // Refused: tampered (ours and theirs), expired (theirs, and ours an hour on), untrusted.
    for original in [&passport[0], &passport[2]] {
        let mut parts: Vec<String> = original.split('.').map(str::to_owned).collect();
        let mut claims = claims_of(original);
        claims["sub"] = "someone-else".into();
        parts[1] = proto::b64::encode(claims.to_string());
        assert_eq!(
            visa::verify_visa(&parts.join("."), &trusted, now, LEEWAY),
            Err(proto::Error::BadSignature)
        );
    }
    assert_eq!(
        visa::verify_visa(&released[2], &trusted, now, LEEWAY),
        Err(proto::Error::Expired)
    );
    assert_eq!(
        visa::verify_visa(&passport[0], &trusted, now + 3600, LEEWAY),
        Err(proto::Error::Expired)
    );
    assert_eq!(
        visa::verify_visa(&passport[2], &trusted[..1], now, LEEWAY),
        Err(proto::Error::UntrustedJku)
    );
    assert!(visa::verify_visa(&released[3], &trusted, now, LEEWAY).is_err());

    // No token carries a visa (AAI, Conformance for Brokers 1.4.2).
    let id_token = claims_of(tokens["id_token"].as_str().unwrap());
    for claims in [claims_of(&access), id_token] {
        assert!(
            claims.get(PASSPORT).is_none() && claims.get("ga4gh_visa_v1").is_none(),
            "{claims}"
        );
    }
    let metadata = f.h.get_json("/.well-known/openid-configuration").await;
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&PASSPORT.into())
    );
    assert!(
        metadata["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&PASSPORT.into())
    );

    // A third-party client's consent page (inside vis1's session) lists what the scope releases.
    let consent = f
        .browser
        .get(f.h.url("/authorize"))
        .query(&params_for(
            &Pkce::new(),
            DAM,
            &format!("openid {PASSPORT}"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);
    let page = consent.text().await.unwrap();
    for listed in [
        "<code>LinkedIdentities</code>: you are vis1 at Corp &lt;IdP&gt;",
        "<code>ControlledAccessGrants</code>: https://datasets.wire.example/DS-42",
        "<code>AffiliationAndRole</code>: faculty@corp.example (https://corp.example, from Corp &lt;IdP&gt;)",
    ] {
        assert!(page.contains(listed), "{listed}: {page}");
    }

    // A login through the upstream without visas replaces the imported ones with none.
    f.idp
        .test_route(reqwest::Method::POST, "/test/drop-visas")
        .await;
    f.sign_out().await;
    let again = console_login(&f, "vis1", &format!("openid {PASSPORT}")).await;
    let passport = f.h.passport(again["access_token"].as_str().unwrap()).await;
    assert_eq!(passport.len(), 2, "ours only: {passport:#?}");
    let (_, audit) = f.stopped_store().await;
    assert_eq!(audit.matches("\"upstream.visas_imported\"").count(), 2);
    assert_eq!(audit.matches("\"user.visa_added\"").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_scope_gets_no_passport_and_an_account_without_links_no_linked_identities()
 {
    let h = Harness::start_seeded(|_| {}, seed).await;
    let admin = h.admin_token().await;
    let added = h.assert_visa(&admin, "bob", &grant()).await;
    assert_eq!(added.status(), 201);
    let id = added.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed: Value = h
        .client
        .get(h.url("/admin/users/bob/visas"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["visas"][0]["id"], id.as_str());
    assert_eq!(listed["visas"][0]["by"], "dac");

    let without = h.login_as(CONSOLE, "openid", "bob", "bob-password-1").await;
    let info = h.userinfo(without["access_token"].as_str().unwrap()).await;
    assert!(info.get(PASSPORT).is_none(), "{info}");

    let with = h
        .login_as(
            CONSOLE,
            &format!("openid {PASSPORT}"),
            "bob",
            "bob-password-1",
        )
        .await;
    let access = with["access_token"].as_str().unwrap().to_owned();
    let passport = h.passport(&access).await;
    assert_eq!(
        passport.len(),
        1,
        "the asserted visa, no LinkedIdentities: {passport:#?}"
    );
    let trusted = [h.trusted_issuer().await];
    let verified = visa::verify_visa(&passport[0], &trusted, h.now(), 0).unwrap();
    assert_eq!(verified.claims.visa.visa_type, "ControlledAccessGrants");
    assert!(
        !visa::conditions_met(&verified.claims.visa, &[&verified.claims.visa]),
        "bob has no faculty affiliation"
    );

    // A third-party client gets it only once the user allowed it, having been told what it is.
    let consent = h
        .authorize(
            &params_for(&Pkce::new(), DAM, &format!("openid {PASSPORT}")),
            "bob",
            "bob-password-1",
        )
        .await;
    assert_eq!(consent.status(), 200);
    let page = consent.text().await.unwrap();
    assert!(page.contains("See your GA4GH Passport"), "{page}");
    assert!(
        page.contains("<code>ControlledAccessGrants</code>: https://datasets.wire.example/DS-42 (https://dac.wire.example/DAC-7, asserted here)"),
        "the page lists the visa: {page}"
    );
    let third = h
        .login_as(DAM, &format!("openid {PASSPORT}"), "bob", "bob-password-1")
        .await;
    let theirs = h.passport(third["access_token"].as_str().unwrap()).await;
    assert_eq!(theirs.len(), 1);
    let again = visa::verify_visa(&theirs[0], &trusted, h.now(), 0).unwrap();
    assert_eq!(again.claims.visa, verified.claims.visa);
    assert_ne!(
        again.claims.jti, verified.claims.jti,
        "minted at each request"
    );

    // Removed by the admin: the Passport is empty, and a second removal finds nothing.
    let remove = |id: String| {
        h.client
            .delete(h.url(&format!("/admin/users/bob/visas/{id}")))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(remove(id.clone()).await.unwrap().status(), 204);
    assert_eq!(remove(id).await.unwrap().status(), 404);
    assert!(h.passport(&access).await.is_empty());
    let info = h.userinfo(&access).await;
    assert_eq!(info[PASSPORT], json!([]), "the claim is there, empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinking_the_upstream_identity_drops_its_visas() {
    let f = Federation::launch(Setup::oidc_with("link", VISAS), |_| {}, seed).await;
    // vis2 at the upstream is linked to bob's account by bob's password.
    let pkce = Pkce::new();
    let at_upstream = f
        .to_upstream_for(&params_for(&pkce, CONSOLE, &format!("openid {PASSPORT}")))
        .await;
    let callback = f.upstream_login(at_upstream, "vis2", false).await;
    let page = f.get(&callback).await.text().await.unwrap();
    let linked = f
        .browser
        .post(f.h.url("/upstream/link"))
        .form(&[
            ("ticket", ticket_of(&page)),
            ("username", "bob".to_owned()),
            ("password", "bob-password-1".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), 303);
    let code = location_params(&linked)["code"].clone();
    let tokens: Value =
        f.h.token_request(&token_form_for(CONSOLE, &code, &pkce.verifier), None)
            .await
            .json()
            .await
            .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let passport = f.h.passport(&access).await;
    assert_eq!(
        passport.len(),
        3,
        "LinkedIdentities and two imported: {passport:#?}"
    );
    assert_eq!(passport[1..], upstream_visas(&f, "vis2").await[..2]);

    // bob unlinks the identity on the account page (bob still has his password).
    let account = f.get(&f.h.url("/account")).await.text().await.unwrap();
    let csrf = form_field(&account, "Unlink", "csrf");
    let unlinked = f
        .browser
        .post(f.h.url("/account/unlink"))
        .form(&[("upstream", "corp".to_owned()), ("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(unlinked.status(), 303);
    assert!(
        f.h.passport(&access).await.is_empty(),
        "nothing linked, nothing imported"
    );
    let (store, _) = f.stopped_store().await;
    let bob = authz_server::users::by_handle(store.as_ref(), "bob")
        .unwrap()
        .unwrap();
    assert!(
        authz_server::store::imported_visas::of_user(store.as_ref(), &bob.id)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_cannot_pass_on_a_visa_of_ours_about_another_user() {
    let f = Federation::launch(Setup::oidc_with("create", VISAS), |_| {}, seed).await;
    // bob's Passport holds a grant we sign for bob.
    let admin = f.h.admin_token().await;
    assert_eq!(f.h.assert_visa(&admin, "bob", &grant()).await.status(), 201);
    let bobs =
        f.h.login_as(
            CONSOLE,
            &format!("openid {PASSPORT}"),
            "bob",
            "bob-password-1",
        )
        .await;
    let bobs_visa = f.h.passport(bobs["access_token"].as_str().unwrap()).await[0].clone();
    let trusted = [f.h.trusted_issuer().await];
    let bob_id = claims_of(bobs["access_token"].as_str().unwrap())["sub"].clone();
    assert_eq!(
        visa::verify_visa(&bobs_visa, &trusted, f.h.now(), 0)
            .unwrap()
            .claims
            .sub,
        bob_id.as_str().unwrap()
    );

    // The upstream (which got it as one of our clients, say) releases it for vis3.
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("visa", &bobs_visa)
        .finish();
    f.idp
        .test_route(reqwest::Method::POST, &format!("/test/extra-visa?{query}"))
        .await;
    let tokens = console_login(&f, "vis3", &format!("openid {PASSPORT}")).await;
    let access = tokens["access_token"].as_str().unwrap();
    let vis3_id = claims_of(access)["sub"].as_str().unwrap().to_owned();
    let passport = f.h.passport(access).await;
    assert!(!passport.contains(&bobs_visa), "{passport:#?}");
    // Every visa in vis3's Passport that verifies as ours is about vis3.
    for token in &passport {
        if let Ok(ours) = visa::verify_visa(token, &trusted, f.h.now(), 0) {
            assert_eq!(ours.claims.sub, vis3_id, "{:#?}", ours.claims);
        }
    }
    assert_eq!(passport.len(), 3, "LinkedIdentities and the upstream's two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_no_longer_allowed_the_scope_gets_no_passport() {
    let mut h = Harness::start_seeded(|_| {}, seed).await;
    let admin = h.admin_token().await;
    assert_eq!(h.assert_visa(&admin, "bob", &grant()).await.status(), 201);
    let with = h
        .login_as(
            CONSOLE,
            &format!("openid {PASSPORT}"),
            "bob",
            "bob-password-1",
        )
        .await;
    let access = with["access_token"].as_str().unwrap().to_owned();
    assert_eq!(h.passport(&access).await.len(), 1);

    // The operator takes the scope away from the console (`client set-scopes`, on the stopped
    // server's store), and the server starts again at the same address.
    let running = h.server.take().unwrap();
    let addr = running.addr;
    running.shutdown().await.unwrap();
    let config = authz_server::Config {
        listen: addr,
        data_dir: h.dir.path().to_owned(),
        store: h.store_config(),
        dev: true,
        domain: DOMAIN.into(),
        ..authz_server::Config::default()
    };
    {
        let store = authz_server::server::open_store(&config).unwrap();
        assert!(
            oauth_clients::set_scopes(
                store.as_ref(),
                CONSOLE,
                Some(vec!["openid".into(), "roles".into()])
            )
            .unwrap()
        );
        store.flush().unwrap();
    }
    h.server = Some(authz_server::start(config, h.clock.clone()).await.unwrap());
    // The token still works at /userinfo (openid is still allowed), without the Passport.
    let info = h.userinfo(&access).await;
    assert_eq!(info["sub"], claims_of(&access)["sub"]);
    assert!(info.get(PASSPORT).is_none(), "{info}");
}
