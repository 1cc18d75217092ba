//! RFC 7523 JWT bearer grants from configured issuers: `partner`, whose JWK Set is served by a
//! small real HTTPS server on 127.0.0.1 (counting its fetches) and whose first logins make
//! accounts, and `filed`, whose keys are read from a file and whose first logins are refused.
//! Covered: a valid assertion gets tokens for the account linked to its subject (the same one
//! again for a second assertion, refresh works, `aud` may be our issuer or token endpoint);
//! an untrusted issuer, a wrong audience, an expired assertion, one living too long, not yet
//! valid, issued in the future or too long ago, one without `jti`, a bad signature, `alg: none` and a replayed `jti` are `invalid_grant`; a
//! client not allowed for the issuer, or not at all, is `unauthorized_client`; a hundred
//! simultaneous presentations of one assertion make exactly one grant and one key fetch; an
//! issuer whose keys cannot be fetched gives 503 `temporarily_unavailable`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use authz_server::Config;
use authz_server::oauth_clients::{self, OAuthClient};
use common::peer::TlsPeer;
use common::*;
use proto::jws::{Algorithm, SigningKey};
use serde_json::{Map, Value, json};

const BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const PARTNER: &str = "https://partner.test";
const FILED: &str = "https://filed.test";

struct Setup {
    h: Harness,
    partner_key: SigningKey,
    filed_key: SigningKey,
    fetches: Arc<AtomicUsize>,
    secrets: Vec<(String, String)>,
    _jwks: TlsPeer,
    _files: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Self {
        let partner_key = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("p1");
        let filed_key = SigningKey::generate(Algorithm::EdDsa)
            .unwrap()
            .with_kid("f1");
        let fetches = Arc::new(AtomicUsize::new(0));
        let published = json!({"keys": [partner_key.public_jwk().to_json()]});
        let counter = fetches.clone();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let published = published.clone();
                async move { axum::Json(published) }
            }),
        );
        let jwks = TlsPeer::spawn(app);
        let files = tempfile::tempdir().unwrap();
        let key_file = files.path().join("filed-jwks.json");
        std::fs::write(
            &key_file,
            json!({"keys": [filed_key.public_jwk().to_json()]}).to_string(),
        )
        .unwrap();
        let tables = format!(
            r#"
[[jwt_bearer_issuer]]
id = "partner"
issuer = "{PARTNER}"
jwks_uri = "{}/jwks.json"
trust_anchors = ["{}"]
first_login = "create"

[[jwt_bearer_issuer]]
id = "gone"
issuer = "https://gone.test"
jwks_uri = "https://127.0.0.1:1/jwks.json"
failure_cache_secs = 30

[[jwt_bearer_issuer]]
id = "filed"
issuer = "{FILED}"
jwks_file = "{}"
"#,
            jwks.base,
            jwks.ca.display(),
            key_file.display()
        );
        let parsed: Config = toml::from_str(&tables).unwrap();
        let secrets: Vec<(String, String)> = ["svc", "limited", "other"]
            .iter()
            .map(|id| {
                (
                    (*id).to_owned(),
                    oauth_clients::new_secret().0.expose().to_owned(),
                )
            })
            .collect();
        let seeded = secrets.clone();
        let h = Harness::start_seeded(
            |c| {
                c.jwt_bearer_issuer = parsed.jwt_bearer_issuer;
                c.limits.max_connections_per_address = 1000;
            },
            move |store| {
                for ((id, secret), issuers) in
                    seeded
                        .iter()
                        .zip([vec!["partner", "filed", "gone"], vec!["filed"], vec![]])
                {
                    oauth_clients::add(store, &client(id, Some(secret), &issuers)).unwrap();
                }
                oauth_clients::add(store, &client("web", None, &[])).unwrap();
            },
        )
        .await;
        Self {
            h,
            partner_key,
            filed_key,
            fetches,
            secrets,
            _jwks: jwks,
            _files: files,
        }
    }

    /// Claims of a good assertion of `iss` about `sub`, for our token endpoint.
    fn claims(&self, iss: &str, sub: &str) -> Map<String, Value> {
        let now = self.h.now();
        json!({"iss": iss, "sub": sub, "aud": self.h.url("/token"), "iat": now,
               "exp": now + 120, "jti": proto::random::token(128),
               "preferred_username": sub, "name": format!("{sub} of {iss}")})
        .as_object()
        .unwrap()
        .clone()
    }

    fn sign(key: &SigningKey, claims: &Map<String, Value>) -> String {
        key.sign_jwt("JWT", false, claims).unwrap()
    }

    /// A partner assertion about `sub`, with `change` applied to its claims.
    fn partner(&self, sub: &str, change: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut claims = self.claims(PARTNER, sub);
        change(&mut claims);
        Self::sign(&self.partner_key, &claims)
    }

    /// A JWT bearer token request of `client` (with its secret, if it has one).
    async fn present(&self, client: &str, assertion: &str) -> reqwest::Response {
        let mut request = self.h.client.post(self.h.url("/token"));
        let mut form = vec![
            ("grant_type", BEARER),
            ("assertion", assertion),
            ("scope", "openid profile"),
        ];
        match self.secrets.iter().find(|(id, _)| id == client) {
            Some((id, secret)) => request = request.basic_auth(id, Some(secret)),
            None => form.push(("client_id", client)),
        }
        request.form(&form).send().await.unwrap()
    }
}

fn client(id: &str, secret: Option<&str>, issuers: &[&str]) -> OAuthClient {
    OAuthClient {
        id: id.into(),
        redirect_uris: vec![REDIRECT_URI.to_owned()],
        secret_sha256: secret.map(authz_server::store::digest),
        consent_required: false,
        jwks: None,
        scopes: None,
        post_logout_redirect_uris: Vec::new(),
        token_exchange: Vec::new(),
        remote_auth: Vec::new(),
        jwt_bearer: issuers.iter().map(|i| (*i).to_owned()).collect(),
    }
}

/// Status, `error` and `error_description` of a refusal.
async fn refusal(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn a_valid_assertion_gets_tokens_for_the_account_linked_to_its_subject() {
    let s = Setup::start().await;
    let metadata = s.h.get_json("/.well-known/openid-configuration").await;
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == BEARER), "{grants:?}");

    let response = s.present("svc", &s.partner("steve", |_| {})).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let id = s.h.verified_id_token(&tokens).await;
    assert_eq!(id["preferred_username"], format!("steve@{DOMAIN}"));
    assert_eq!(id["name"], format!("steve of {PARTNER}"));
    assert_eq!(id["aud"], "svc");

    // Another assertion about the same subject, naming our issuer URL as its audience: the
    // same account.
    let issuer_url = s.h.base.clone();
    let second = s.partner("steve", |c| {
        c.insert("aud".into(), json!([issuer_url]));
    });
    let response = s.present("svc", &second).await;
    assert_eq!(response.status(), 200);
    let tokens2: Value = response.json().await.unwrap();
    assert_eq!(s.h.verified_id_token(&tokens2).await["sub"], id["sub"]);

    // Its refresh token works like any other.
    let (id_, secret) = &s.secrets[0];
    let response =
        s.h.client
            .post(s.h.url("/token"))
            .basic_auth(id_, Some(secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), 200);

    let audit = std::fs::read_to_string(s.h.dir.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("jwt_bearer.succeeded"), "{audit}");
}

#[tokio::test]
async fn refused_assertions_are_invalid_grant() {
    let s = Setup::start().await;
    let now = s.h.now();
    let other_key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("p1");
    let forged = Setup::sign(&other_key, &s.claims(PARTNER, "steve"));
    let untrusted = Setup::sign(&s.partner_key, &s.claims("https://evil.test", "steve"));
    let unsigned = {
        let good = s.partner("steve", |_| {});
        let payload = good.split('.').nth(1).unwrap().to_owned();
        format!(
            "{}.{payload}.",
            proto::b64::encode(br#"{"alg":"none","typ":"JWT"}"#)
        )
    };
    let cases = [
        (untrusted, "its issuer is not trusted"),
        (
            s.partner("steve", |c| {
                c.insert("aud".into(), json!("https://elsewhere.test/token"));
            }),
            "audience",
        ),
        (
            s.partner("steve", |c| {
                c.insert("exp".into(), json!(now - 61));
                c.insert("iat".into(), json!(now - 200));
            }),
            "expired",
        ),
        (
            s.partner("steve", |c| {
                c.insert("exp".into(), json!(now + 3600));
            }),
            "more than 300 s ahead",
        ),
        (
            s.partner("steve", |c| {
                c.remove("jti");
            }),
            "jti",
        ),
        (
            s.partner("steve", |c| {
                c.remove("sub");
            }),
            "sub",
        ),
        (
            s.partner("steve", |c| {
                c.insert("nbf".into(), json!(now + 120));
            }),
            "not valid yet",
        ),
        (
            s.partner("steve", |c| {
                c.insert("iat".into(), json!(now + 120));
            }),
            "issued in the future",
        ),
        (
            s.partner("steve", |c| {
                c.insert("iat".into(), json!(now - 1000));
            }),
            "issued more than 300 s ago",
        ),
        (forged, "signature"),
        (unsigned, "algorithm"),
    ];
    for (assertion, expected) in cases {
        let (status, error, description) = refusal(s.present("svc", &assertion).await).await;
        assert_eq!(
            (status, error.as_str()),
            (400, "invalid_grant"),
            "{expected}: {description}"
        );
        assert!(description.contains(expected), "{expected}: {description}");
    }
    // Used once; the second time it is a replay.
    let once = s.partner("steve", |_| {});
    assert_eq!(s.present("svc", &once).await.status(), 200);
    let (status, error, description) = refusal(s.present("svc", &once).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(description.contains("already used"), "{description}");
    // A subject the `filed` issuer vouches for has no account, and none is made.
    let filed = Setup::sign(&s.filed_key, &s.claims(FILED, "alex"));
    let (status, error, description) = refusal(s.present("svc", &filed).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(
        description.contains("ask an administrator"),
        "{description}"
    );
    let audit = std::fs::read_to_string(s.h.dir.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"reason\":\"replayed\""), "{audit}");
}

#[tokio::test]
async fn clients_not_allowed_are_unauthorized() {
    let s = Setup::start().await;
    let assertion = s.partner("steve", |_| {});
    for (client, expected) in [
        ("other", "may not present JWT-bearer assertions"),
        ("web", "may not present JWT-bearer assertions"),
        ("limited", "may not present assertions of partner"),
    ] {
        let (status, error, description) = refusal(s.present(client, &assertion).await).await;
        assert_eq!(
            (status, error.as_str()),
            (400, "unauthorized_client"),
            "{client}"
        );
        assert!(description.contains(expected), "{client}: {description}");
    }
    // Refused before anything was used: the assertion still works for an allowed client.
    assert_eq!(s.present("svc", &assertion).await.status(), 200);
}

#[tokio::test]
async fn a_hundred_simultaneous_presentations_of_one_assertion_make_one_grant() {
    let s = Arc::new(Setup::start().await);
    let assertion = Arc::new(s.partner("steve", |_| {}));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (s, assertion) = (s.clone(), assertion.clone());
            tokio::spawn(async move { s.present("svc", &assertion).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert_eq!((count(200), count(400)), (1, 99), "{statuses:?}");
    assert_eq!(
        s.fetches.load(Ordering::SeqCst),
        1,
        "the keys are fetched once for all of them"
    );
}

#[tokio::test]
async fn an_issuer_whose_keys_cannot_be_fetched_is_temporarily_unavailable() {
    let s = Setup::start().await;
    let assertion = Setup::sign(&s.partner_key, &s.claims("https://gone.test", "steve"));
    for _ in 0..2 {
        let response = s.present("svc", &assertion).await;
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        let (_, error, description) = refusal(response).await;
        assert_eq!(error, "temporarily_unavailable");
        assert!(
            description.contains("keys of the assertion issuer gone"),
            "{description}"
        );
    }
    // Not used up: the assertion was refused before its jti was recorded.
    let audit = std::fs::read_to_string(s.h.dir.path().join("audit.jsonl")).unwrap();
    assert!(!audit.contains("\"reason\":\"replayed\""), "{audit}");
}
