//! The remote verifier grant against a real verifier: a small HTTPS server on 127.0.0.1 (its
//! own dev PKI, configured as the verifier's trust anchor) that answers like Minecraft's
//! session server — `hasJoined?username=…&serverId=…` gives `{"id", "name"}` for a player that
//! joined under that one-time hash (once), 204 otherwise — and a route that never answers.
//! Covered: a joined player gets tokens (access, ID with the verifier's name, refresh that
//! works) and logs in to the same linked account again; the hash is one-time and never in the
//! audit log; values are validated first and percent-encoded into the URL (an `&` cannot add a
//! parameter) and a value cannot be a `.` or `..` path segment (`/users/{name}/sessions/..`
//! would ask the public profile `/users/{name}/`); a client not allowed gets `unauthorized_client` and the verifier is not asked;
//! a verifier that says no gives `invalid_grant`; one that hangs gives 503
//! `temporarily_unavailable` with `Retry-After` once its `timeout_ms` passed, and so does one
//! answering a MiB (refused at `max_response_bytes`), a 500, or a certificate
//! outside the trust anchors; a POSTed question's answer read by JSON pointers; `first_login =
//! "refuse"` makes no account but an operator's link (`users::link_identity`) logs in; a login with a DPoP proof is bound to its key (and so is its
//! refresh); a hundred simultaneous failed logins ask the verifier exactly
//! `burst` times (the rest are 429); the grant types are in the discovery document.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authz_server::Config;
use authz_server::oauth_clients::{self, OAuthClient};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::peer::TlsPeer;
use common::*;
use serde_json::{Value, json};

const MINECRAFT: &str = "https://auth.test/grant-type/minecraft";
const STUCK: &str = "https://auth.test/grant-type/stuck";
const STRICT: &str = "https://auth.test/grant-type/strict";
const POSTED: &str = "https://auth.test/grant-type/posted";
const PATHY: &str = "https://auth.test/grant-type/pathy";

/// The session server's memory: who joined under which hash, and every question asked.
#[derive(Default)]
struct Sessions {
    joined: HashSet<(String, String)>,
    asked: Vec<(String, String)>,
}

type Shared = Arc<Mutex<Sessions>>;

async fn has_joined(
    State(sessions): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let username = query.get("username").cloned().unwrap_or_default();
    let hash = query.get("serverId").cloned().unwrap_or_default();
    let mut s = sessions.lock().unwrap();
    s.asked.push((username.clone(), hash.clone()));
    if s.joined.remove(&(username.clone(), hash)) {
        axum::Json(json!({"id": player_id(&username), "name": username})).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// The session server's stable id of a player.
fn player_id(username: &str) -> String {
    proto::b64::encode(fold16(username))
}

/// 16 bytes folded from a name: a stable id for a test player.
fn fold16(name: &str) -> [u8; 16] {
    let mut id = [0u8; 16];
    for (i, b) in name.bytes().enumerate() {
        id[i % 16] = id[i % 16].wrapping_mul(31).wrapping_add(b);
    }
    id
}

/// The same question as a form POST (`method = "POST"`, no values in the URL).
async fn has_joined_posted(
    State(sessions): State<Shared>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let username = form.get("username").cloned().unwrap_or_default();
    let hash = form.get("server_hash").cloned().unwrap_or_default();
    let mut s = sessions.lock().unwrap();
    s.asked.push((username.clone(), hash.clone()));
    if s.joined.remove(&(username.clone(), hash)) {
        axum::Json(json!({"player": {"uuid": player_id(&username), "name": username}}))
            .into_response()
    } else {
        StatusCode::FORBIDDEN.into_response()
    }
}

/// An answer far larger than any verifier's should be (a MiB of JSON).
async fn oversized() -> Response {
    let padding = "x".repeat(1024 * 1024);
    axum::Json(json!({"id": "1", "name": "n", "padding": padding})).into_response()
}

/// A verifier of another shape, with the values in its path: a player's public profile at
/// `/users/{name}/` (anyone may read it), and `/users/{name}/sessions/{token}` answering the
/// profile only for the one-time token the player joined under.
async fn public_profile(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    axum::Json(json!({"id": player_id(&name), "name": name})).into_response()
}

async fn session_of(
    State(sessions): State<Shared>,
    axum::extract::Path((name, token)): axum::extract::Path<(String, String)>,
) -> Response {
    let mut s = sessions.lock().unwrap();
    s.asked.push((name.clone(), token.clone()));
    if s.joined.remove(&(name.clone(), token)) {
        axum::Json(json!({"id": player_id(&name), "name": name})).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

async fn broken() -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn never_answers() -> StatusCode {
    std::future::pending::<()>().await;
    StatusCode::OK
}

struct Setup {
    h: Harness,
    sessions: Shared,
    _verifier: TlsPeer,
}

impl Setup {
    async fn start(edit: impl FnOnce(&mut Config)) -> Self {
        let sessions = Shared::default();
        let app = axum::Router::new()
            .route(
                "/session/minecraft/hasJoined",
                axum::routing::get(has_joined),
            )
            .route("/hang", axum::routing::get(never_answers))
            .route("/post", axum::routing::post(has_joined_posted))
            .route("/oversized", axum::routing::get(oversized))
            .route("/broken", axum::routing::get(broken))
            .route("/users/{name}/", axum::routing::get(public_profile))
            .route(
                "/users/{name}/sessions/{token}",
                axum::routing::get(session_of),
            )
            .with_state(sessions.clone());
        let verifier = TlsPeer::spawn(app);
        let (base, ca) = (&verifier.base, verifier.ca.display());
        let tables = format!(
            r#"
[[remote_auth]]
id = "mc"
display_name = "Minecraft"
grant_type = "{MINECRAFT}"
params = ["username", "server_hash"]
url = "{base}/session/minecraft/hasJoined?username={{username}}&serverId={{server_hash}}"
trust_anchors = ["{ca}"]
first_login = "create"

[[remote_auth]]
id = "stuck"
grant_type = "{STUCK}"
params = ["username", "server_hash"]
url = "{base}/hang?username={{username}}&serverId={{server_hash}}"
trust_anchors = ["{ca}"]
timeout_ms = 500
first_login = "create"

[[remote_auth]]
id = "posted"
grant_type = "{POSTED}"
params = ["username", "server_hash"]
method = "POST"
url = "{base}/post"
subject_field = "/player/uuid"
name_field = "/player/name"
trust_anchors = ["{ca}"]
first_login = "create"

[[remote_auth]]
id = "oversized"
grant_type = "https://auth.test/grant-type/oversized"
params = ["username"]
url = "{base}/oversized?u={{username}}"
trust_anchors = ["{ca}"]

[[remote_auth]]
id = "broken"
grant_type = "https://auth.test/grant-type/broken"
params = ["username"]
url = "{base}/broken?u={{username}}"
trust_anchors = ["{ca}"]

[[remote_auth]]
id = "untrusted"
grant_type = "https://auth.test/grant-type/untrusted"
params = ["username"]
url = "{base}/session/minecraft/hasJoined?username={{username}}"

[[remote_auth]]
id = "pathy"
grant_type = "{PATHY}"
params = ["username", "server_hash"]
url = "{base}/users/{{username}}/sessions/{{server_hash}}"
trust_anchors = ["{ca}"]
first_login = "create"

[[remote_auth]]
id = "strict"
grant_type = "{STRICT}"
params = ["username", "server_hash"]
url = "{base}/session/minecraft/hasJoined?username={{username}}&serverId={{server_hash}}"
trust_anchors = ["{ca}"]
"#
        );
        let parsed: Config = toml::from_str(&tables).unwrap();
        let h = Harness::start_seeded(
            |c| {
                c.remote_auth = parsed.remote_auth;
                c.limits.max_connections_per_address = 1000;
                edit(c);
            },
            seed,
        )
        .await;
        Self {
            h,
            sessions,
            _verifier: verifier,
        }
    }

    /// The player `username` joins a server under a fresh one-time hash; returns it.
    fn join(&self, username: &str) -> String {
        let hash = format!("-{}", proto::random::token(128));
        let mut s = self.sessions.lock().unwrap();
        s.joined.insert((username.to_owned(), hash.clone()));
        hash
    }

    fn asked(&self) -> Vec<(String, String)> {
        self.sessions.lock().unwrap().asked.clone()
    }

    /// A token request of the public client `client` under `grant_type` with `params`.
    async fn remote_login(
        &self,
        client: &str,
        grant_type: &str,
        params: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", grant_type.to_owned()),
            ("client_id", client.to_owned()),
            ("scope", "openid profile".to_owned()),
        ];
        form.extend(params.iter().map(|(k, v)| (*k, (*v).to_owned())));
        self.h.token_request(&form, None).await
    }
}

/// `game` (public, allowed for every verifier, no redirect URI) and `web` (public, allowed for
/// none); the local account `alex`, to which the operator linked the player Alex of `strict`.
fn seed(store: &dyn authz_server::store::Store) {
    add_user(store, "alex", "alex's password 123");
    authz_server::users::link_identity(store, "alex", "strict", "strict", &player_id("Alex"), 0)
        .unwrap();
    for (id, redirect_uris, remote_auth) in [
        (
            "game",
            vec![],
            vec![
                "mc",
                "stuck",
                "strict",
                "posted",
                "oversized",
                "broken",
                "untrusted",
                "pathy",
            ],
        ),
        ("web", vec![REDIRECT_URI.to_owned()], vec![]),
    ] {
        oauth_clients::add(
            store,
            &OAuthClient {
                id: id.into(),
                redirect_uris,
                secret_sha256: None,
                consent_required: false,
                jwks: None,
                scopes: None,
                post_logout_redirect_uris: Vec::new(),
                token_exchange: Vec::new(),
                remote_auth: remote_auth.into_iter().map(String::from).collect(),
                jwt_bearer: Vec::new(),
            },
        )
        .unwrap();
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
async fn a_joined_player_gets_tokens_and_logs_in_to_the_same_account_again() {
    let s = Setup::start(|_| {}).await;
    let metadata = s.h.get_json("/.well-known/openid-configuration").await;
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    for expected in [MINECRAFT, STUCK, STRICT] {
        assert!(grants.iter().any(|g| g == expected), "{grants:?}");
    }
    // No issuer of JWT-bearer assertions is configured, so that grant is not offered.
    assert!(
        !grants
            .iter()
            .any(|g| g == "urn:ietf:params:oauth:grant-type:jwt-bearer")
    );

    let hash = s.join("Notch");
    let response = s
        .remote_login(
            "game",
            MINECRAFT,
            &[("username", "Notch"), ("server_hash", &hash)],
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile");
    let id = s.h.verified_id_token(&tokens).await;
    assert_eq!(id["name"], "Notch");
    assert_eq!(id["preferred_username"], format!("notch@{DOMAIN}"));
    assert_eq!(id["amr"], json!(["fed"]));
    assert_eq!(id["aud"], "game");
    assert_eq!(
        s.asked(),
        vec![("Notch".to_owned(), hash.clone())],
        "the verifier saw the values as presented"
    );

    // The hash was one-time: the verifier says no the second time.
    let again = s
        .remote_login(
            "game",
            MINECRAFT,
            &[("username", "Notch"), ("server_hash", &hash)],
        )
        .await;
    let (status, error, _) = refusal(again).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));

    // A new join logs in to the account linked at the first.
    let second = s.join("Notch");
    let response = s
        .remote_login(
            "game",
            MINECRAFT,
            &[("username", "Notch"), ("server_hash", &second)],
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens2: Value = response.json().await.unwrap();
    assert_eq!(s.h.verified_id_token(&tokens2).await["sub"], id["sub"]);

    // Its refresh token works like any other.
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let response =
        s.h.token_request(
            &[
                ("grant_type", "refresh_token".into()),
                ("client_id", "game".into()),
                ("refresh_token", refresh.into()),
            ],
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let refreshed: Value = response.json().await.unwrap();
    assert!(refreshed["refresh_token"].is_string(), "{refreshed}");
    // The refreshed access token is the same user's (its signature checked like an ID token's).
    let access = json!({"id_token": refreshed["access_token"]});
    assert_eq!(s.h.verified_id_token(&access).await["sub"], id["sub"]);

    // The audit log names the login, never the one-time hash.
    let audit = std::fs::read_to_string(s.h.dir.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("remote_auth.succeeded"), "{audit}");
    assert!(audit.contains("remote_auth.refused"), "{audit}");
    assert!(
        !audit.contains(&hash) && !audit.contains(&second),
        "{audit}"
    );
}

#[tokio::test]
async fn values_are_checked_first_and_percent_encoded_into_the_url() {
    let s = Setup::start(|_| {}).await;
    // An ampersand cannot add a parameter: the verifier sees the username as presented.
    let sneaky = "alice&serverId=forged";
    let response = s
        .remote_login(
            "game",
            MINECRAFT,
            &[("username", sneaky), ("server_hash", "h/1?#%")],
        )
        .await;
    let (status, error, _) = refusal(response).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert_eq!(s.asked(), vec![(sneaky.to_owned(), "h/1?#%".to_owned())]);
    let long = "x".repeat(129);
    for (params, expected) in [
        (vec![("username", "alice")], "server_hash is missing"),
        (
            vec![("username", "alice"), ("server_hash", "")],
            "server_hash is missing",
        ),
        (
            vec![("username", "al ice"), ("server_hash", "h")],
            "username must be 1 to 128",
        ),
        (
            vec![("username", long.as_str()), ("server_hash", "h")],
            "username must be 1 to 128",
        ),
        (
            vec![("username", "älice"), ("server_hash", "h")],
            "username must be 1 to 128",
        ),
    ] {
        let (status, error, description) =
            refusal(s.remote_login("game", MINECRAFT, &params).await).await;
        assert_eq!(
            (status, error.as_str()),
            (400, "invalid_request"),
            "{params:?}"
        );
        assert!(description.contains(expected), "{description}");
    }
    assert_eq!(
        s.asked().len(),
        1,
        "refused requests never reach the verifier"
    );
}

#[tokio::test]
async fn a_value_cannot_climb_the_path_of_the_url() {
    let s = Setup::start(|_| {}).await;
    // The values in the path work as presented.
    let hash = s.join("Notch");
    let response = s
        .remote_login(
            "game",
            PATHY,
            &[("username", "Notch"), ("server_hash", &hash)],
        )
        .await;
    assert_eq!(response.status(), 200);
    // A value `..` (or `.`) would be a dot segment: `/users/Notch/sessions/..` is the public
    // profile `/users/Notch/`, which answers Notch's id to anyone — a login without a session.
    for (username, hash) in [("Notch", ".."), ("Notch", "."), ("..", "..")] {
        let response = s
            .remote_login(
                "game",
                PATHY,
                &[("username", username), ("server_hash", hash)],
            )
            .await;
        let (status, error, description) = refusal(response).await;
        assert_eq!(
            (status, error.as_str()),
            (400, "invalid_request"),
            "{username} {hash}: {description}"
        );
    }
    assert_eq!(s.asked().len(), 1, "the verifier was asked only once");
    // In the query such values are only text.
    let response = s
        .remote_login(
            "game",
            MINECRAFT,
            &[("username", ".."), ("server_hash", ".")],
        )
        .await;
    assert_eq!(refusal(response).await.1, "invalid_grant");
}

#[tokio::test]
async fn a_client_not_allowed_is_unauthorized_and_the_verifier_is_not_asked() {
    let s = Setup::start(|_| {}).await;
    let hash = s.join("Notch");
    let response = s
        .remote_login(
            "web",
            MINECRAFT,
            &[("username", "Notch"), ("server_hash", &hash)],
        )
        .await;
    let (status, error, description) = refusal(response).await;
    assert_eq!((status, error.as_str()), (400, "unauthorized_client"));
    assert!(description.contains("Minecraft"), "{description}");
    assert!(s.asked().is_empty());
    // A grant type no verifier has.
    let response = s
        .remote_login(
            "game",
            "https://auth.test/grant-type/unknown",
            &[("username", "Notch"), ("server_hash", &hash)],
        )
        .await;
    let (status, error, description) = refusal(response).await;
    assert_eq!((status, error.as_str()), (400, "unsupported_grant_type"));
    assert!(description.contains(MINECRAFT), "{description}");
    // A grant type that is no URI at all names the verifiers' too.
    let response = s
        .remote_login("game", "password", &[("username", "Notch")])
        .await;
    let (status, error, description) = refusal(response).await;
    assert_eq!((status, error.as_str()), (400, "unsupported_grant_type"));
    assert!(description.contains(STUCK), "{description}");
    assert!(
        !description.contains("jwt-bearer"),
        "no issuer is configured: {description}"
    );
    assert!(s.asked().is_empty());
    // The same hash still works for the client that may use the verifier.
    let response = s
        .remote_login(
            "game",
            MINECRAFT,
            &[("username", "Notch"), ("server_hash", &hash)],
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_verifier_that_says_no_gives_invalid_grant_and_refuse_makes_no_account() {
    let s = Setup::start(|_| {}).await;
    let response = s
        .remote_login(
            "game",
            MINECRAFT,
            &[("username", "Notch"), ("server_hash", "never-joined")],
        )
        .await;
    let (status, error, description) = refusal(response).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(description.contains("does not confirm"), "{description}");
    assert_eq!(s.asked().len(), 1);

    // The verifier says yes, but `strict` makes no account at a first login.
    let hash = s.join("Herobrine");
    let response = s
        .remote_login(
            "game",
            STRICT,
            &[("username", "Herobrine"), ("server_hash", &hash)],
        )
        .await;
    let (status, error, description) = refusal(response).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(
        description.contains("ask an administrator"),
        "{description}"
    );
    // A player the operator linked to an account logs in to it through `strict`.
    let hash = s.join("Alex");
    let response = s
        .remote_login(
            "game",
            STRICT,
            &[("username", "Alex"), ("server_hash", &hash)],
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let id = s.h.verified_id_token(&tokens).await;
    assert_eq!(id["preferred_username"], format!("alex@{DOMAIN}"));
    // No account was made: the handle is still free for a login through `mc`, which creates.
    let hash = s.join("Herobrine");
    let response = s
        .remote_login(
            "game",
            MINECRAFT,
            &[("username", "Herobrine"), ("server_hash", &hash)],
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_verifier_that_hangs_is_temporarily_unavailable_once_its_timeout_passed() {
    let s = Setup::start(|_| {}).await;
    let started = Instant::now();
    let response = s
        .remote_login(
            "game",
            STUCK,
            &[("username", "Notch"), ("server_hash", "h")],
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["retry-after"].to_str().unwrap(),
        "1",
        "the timeout rounded up to seconds"
    );
    let (_, error, description) = refusal(response).await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(description.contains("within 500 ms"), "{description}");
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "bounded by timeout_ms: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_hundred_simultaneous_failures_ask_the_verifier_only_burst_times() {
    let s = Setup::start(|c| {
        c.rate_limits.failed_remote_logins_per_ip = server_kit::rate_limit::Rate::new(1, 10);
    })
    .await;
    let s = Arc::new(s);
    let attempts = (0..100).map(|i| {
        let s = s.clone();
        tokio::spawn(async move {
            let hash = format!("guess-{i}");
            let response = s
                .remote_login(
                    "game",
                    MINECRAFT,
                    &[("username", "Notch"), ("server_hash", &hash)],
                )
                .await;
            response.status().as_u16()
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        statuses.push(attempt.await.unwrap());
    }
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    assert_eq!((count(400), count(429)), (10, 90), "{statuses:?}");
    assert_eq!(s.asked().len(), 10);
    // A player who really joined is refused too while the address is over its limit: the
    // reservation comes before the verifier is asked.
    let hash = s.join("Notch");
    let response = s
        .remote_login(
            "game",
            MINECRAFT,
            &[("username", "Notch"), ("server_hash", &hash)],
        )
        .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(s.asked().len(), 10);
}

#[tokio::test]
async fn a_remote_login_with_a_dpop_proof_is_bound_to_its_key() {
    let s = Setup::start(|_| {}).await;
    let key = proto::jws::SigningKey::generate(proto::jws::Algorithm::Es256).unwrap();
    let proof = || {
        proto::dpop::DpopClaims::new("POST", &s.h.url("/token"), s.h.now())
            .sign(&key)
            .unwrap()
    };
    let hash = s.join("Notch");
    let form = [
        ("grant_type", MINECRAFT.to_owned()),
        ("client_id", "game".to_owned()),
        ("username", "Notch".to_owned()),
        ("server_hash", hash),
    ];
    let response = s.h.token_request(&form, Some(proof())).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let access = json!({"id_token": tokens["access_token"]});
    let claims = s.h.verified_id_token(&access).await;
    assert_eq!(claims["cnf"]["jkt"], key.public_jwk().thumbprint());
    let refresh = [
        ("grant_type", "refresh_token".to_owned()),
        ("client_id", "game".to_owned()),
        (
            "refresh_token",
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        ),
    ];
    let (status, error, _) = refusal(s.h.token_request(&refresh, None).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_dpop_proof"));
    let response = s.h.token_request(&refresh, Some(proof())).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_posted_question_reads_the_answer_by_json_pointer() {
    let s = Setup::start(|_| {}).await;
    let hash = s.join("Jeb_");
    let response = s
        .remote_login(
            "game",
            POSTED,
            &[("username", "Jeb_"), ("server_hash", &hash)],
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(s.h.verified_id_token(&tokens).await["name"], "Jeb_");
    assert_eq!(s.asked(), vec![("Jeb_".to_owned(), hash.clone())]);
    // A 4xx is a no.
    let (status, error, _) = refusal(
        s.remote_login(
            "game",
            POSTED,
            &[("username", "Jeb_"), ("server_hash", &hash)],
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
}

#[tokio::test]
async fn a_verifier_that_answers_too_much_fails_or_is_not_trusted_is_unavailable() {
    let s = Setup::start(|_| {}).await;
    for (grant, expected) in [
        (
            "https://auth.test/grant-type/oversized",
            "larger than 16384 bytes",
        ),
        ("https://auth.test/grant-type/broken", "answered 500"),
        // No trust anchor for the verifier's certificate: the TLS check fails.
        (
            "https://auth.test/grant-type/untrusted",
            "could not be reached",
        ),
    ] {
        let response = s
            .remote_login("game", grant, &[("username", "Notch")])
            .await;
        assert_eq!(response.status(), 503, "{grant}");
        assert!(response.headers().contains_key("retry-after"));
        let (_, error, description) = refusal(response).await;
        assert_eq!(error, "temporarily_unavailable");
        assert!(description.contains(expected), "{grant}: {description}");
    }
}

/// The whole shape of the system that asked for this: a player logs in through the session
/// server for one game server (RFC 8707 `resource`), the groups service is asked for the
/// player's permissions on that server, they are in the access token (whose audience is the
/// server), and a refresh asks the groups service again.
#[tokio::test]
async fn a_remote_login_for_a_server_carries_the_permissions_the_groups_service_gives() {
    use common::own_service::{Answer, OwnService};
    let groups = OwnService::start(Answer::Json(200, json!({"permissions": ["build"]}))).await;
    let groups_url = groups.url("/permissions");
    let s = Setup::start(|c| {
        let source: Config = toml::from_str(&format!(
            "[[claims_source]]\nid = \"groups\"\nurl = \"{groups_url}\"\ncache_secs = 0\n\
             resources = [\"https://mc.test/servers/\"]\n\
             [claims_source.claims]\nentitlements = \"/permissions\"\n"
        ))
        .unwrap();
        c.claims_source = source.claims_source;
    })
    .await;
    let server = "https://mc.test/servers/creative";
    let hash = s.join("Notch");
    let response = s
        .remote_login(
            "game",
            MINECRAFT,
            &[
                ("username", "Notch"),
                ("server_hash", &hash),
                ("resource", server),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let at =
        s.h.verified_id_token(&json!({"id_token": tokens["access_token"]}))
            .await;
    assert_eq!(at["aud"], server);
    assert_eq!(at["entitlements"], json!(["build"]));
    let asked = groups.seen();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].json()["resource"], server);
    assert_eq!(asked[0].json()["sub"], at["sub"]);

    // Elected permissions changed: the refreshed token (same server) carries the new ones.
    groups.answer(Answer::Json(200, json!({"permissions": ["build", "fly"]})));
    let refreshed: Value =
        s.h.token_request(
            &[
                ("grant_type", "refresh_token".into()),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().unwrap().into(),
                ),
                ("client_id", "game".into()),
            ],
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let at =
        s.h.verified_id_token(&json!({"id_token": refreshed["access_token"]}))
            .await;
    assert_eq!(
        (at["aud"].clone(), at["entitlements"].clone()),
        (json!(server), json!(["build", "fly"]))
    );

    // A server the groups service does not answer for: refused before the verifier is asked.
    let before = s.asked().len();
    let elsewhere = s
        .remote_login(
            "game",
            MINECRAFT,
            &[
                ("username", "Notch"),
                ("server_hash", &s.join("Notch")),
                ("resource", "https://other.test/"),
            ],
        )
        .await;
    assert_eq!(refusal(elsewhere).await.1, "invalid_target");
    assert_eq!(s.asked().len(), before);
}
