//! A real authz-server on 127.0.0.1 over TLS with a temp data dir, and a device that talks to
//! it the way the SDK will: PKCE login, device registration, backend nonce, Wire DPoP proof.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod own_service;
pub mod peer;
pub mod upstream;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use authz_server::{Config, RunningServer};
use proto::clock::{Clock, FixedClock, SystemClock};
use proto::dpop::{DpopClaims, WireClaims};
use proto::jws::{Algorithm, SigningKey};
use serde_json::{Map, Value};

pub const DOMAIN: &str = "wire.com";
pub const CHALLENGE_URL: &str = "https://acme.test/acme/wire/challenge/abc/def";

pub fn http_client(ca_pem: &Path) -> reqwest::Client {
    http_client_from(ca_pem, None)
}

/// A client trusting `ca_pem` whose connections come from `local` (e.g. another address of
/// 127.0.0.0/8, to act as a second client address).
pub fn http_client_from(ca_pem: &Path, local: Option<std::net::IpAddr>) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .local_address(local)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub struct Harness {
    pub server: Option<RunningServer>,
    pub client: reqwest::Client,
    pub base: String,
    pub password: String,
    pub clock: Arc<FixedClock>,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL cluster holding the records when the tests run with
    /// `E2EI_TEST_STORE=postgres` (the acme-server of the same test uses it too).
    pub pg: Option<Arc<server_kit::testing::TestPostgres>>,
    /// The configuration the server started with (none for a server attached to).
    pub config: Option<Config>,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        Self::start_seeded(edit, |_| {}).await
    }

    /// Starts a server whose store first receives `seed` (users, clients), the way operator
    /// commands fill a stopped server's store before it starts.
    pub async fn start_seeded(
        edit: impl FnOnce(&mut Config),
        seed: impl FnOnce(&dyn authz_server::store::Store),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            dev: true,
            domain: DOMAIN.into(),
            ..Config::default()
        };
        let pg = server_kit::testing::postgres_if_asked();
        if let Some(pg) = &pg {
            config.store = pg.store_config(None);
        }
        edit(&mut config);
        {
            let store = authz_server::server::open_store(&config).unwrap();
            seed(store.as_ref());
            store.flush().unwrap();
        }
        let clock = Arc::new(FixedClock::new(SystemClock.now()));
        let server = authz_server::start(config.clone(), clock.clone())
            .await
            .unwrap();
        let password = authz_server::server::demo_password(&config)
            .unwrap()
            .expose()
            .to_owned();
        let client = http_client(server.dev_ca_cert.as_ref().unwrap());
        let base = server.base_url.clone();
        Self {
            server: Some(server),
            client,
            base,
            password,
            clock,
            dir,
            pg,
            config: Some(config),
        }
    }

    /// A harness view over a dev-mode server that runs as a subprocess on `data` at `url`
    /// (its demo password read from `data`, the clock this process's).
    pub fn attach(url: String, data: &Path) -> Self {
        let password = std::fs::read_to_string(data.join("demo-password")).unwrap();
        Self {
            server: None,
            client: http_client(&data.join("tls/ca.pem")),
            base: url,
            password: password.trim().to_owned(),
            clock: Arc::new(FixedClock::new(SystemClock.now())),
            dir: tempfile::tempdir().unwrap(),
            pg: None,
            config: None,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The `[store]` this harness's server uses (its PostgreSQL database under
    /// `E2EI_TEST_STORE=postgres`, the embedded store otherwise).
    pub fn store_config(&self) -> server_kit::store::StoreConfig {
        self.pg
            .as_ref()
            .map(|pg| pg.store_config(None))
            .unwrap_or_default()
    }

    /// Opens this harness's store (its server stopped, or beside it).
    pub fn open_store(&self) -> Arc<dyn authz_server::store::Store> {
        let config = Config {
            data_dir: self.dir.path().to_owned(),
            store: self.store_config(),
            ..Config::default()
        };
        let store = authz_server::server::open_store(&config).unwrap();
        match &self.pg {
            Some(pg) => Arc::new(server_kit::testing::StoreOnCluster::new(store, pg.clone())),
            None => store,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An unauthenticated GET of a JSON document (metadata, JWKS).
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// `GET /userinfo` with a DPoP-bound token and a proof (with `ath`) signed by `key`.
    pub async fn userinfo_with_proof(&self, at: &str, key: &SigningKey) -> reqwest::Response {
        let proof = DpopClaims::new("GET", &self.url("/userinfo"), self.now())
            .with_access_token(at)
            .sign(key)
            .unwrap();
        self.client
            .get(self.url("/userinfo"))
            .header("Authorization", format!("DPoP {at}"))
            .header("DPoP", proof)
            .send()
            .await
            .unwrap()
    }
}

pub use proto::pkce::Pkce;

/// The scope the device endpoints require (the default of `device_access.scope`).
pub const DEVICE_SCOPE: &str = "wire_devices";
/// The redirect URI the tests use (the demo clients' loopback URI on a fixed port).
pub const REDIRECT_URI: &str = "http://127.0.0.1:4711/callback";

/// The authorization request parameters of the demo client, asking for the device scope.
pub fn authorize_params(pkce: &Pkce) -> Vec<(&'static str, String)> {
    params_for(pkce, "wireapp", &format!("openid profile {DEVICE_SCOPE}"))
}

/// Authorization request parameters for `client_id` asking for `scope`.
pub fn params_for(pkce: &Pkce, client_id: &str, scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("scope", scope.into()),
        ("state", "st-1".into()),
        ("nonce", "n-1".into()),
        ("code_challenge", pkce.challenge.clone()),
        ("code_challenge_method", "S256".into()),
    ]
}

/// Query parameters of a redirect's `Location`.
pub fn location_params(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap();
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

impl Harness {
    /// Logs in with the credentials form; returns the code.
    pub async fn authorize(
        &self,
        params: &[(&str, String)],
        user: &str,
        password: &str,
    ) -> reqwest::Response {
        let mut form: Vec<(&str, String)> = params.to_vec();
        form.push(("username", user.into()));
        form.push(("password", password.into()));
        self.client
            .post(self.url("/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn token_request(
        &self,
        form: &[(&str, String)],
        dpop: Option<String>,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url("/token")).form(form);
        if let Some(p) = dpop {
            req = req.header("DPoP", p);
        }
        req.send().await.unwrap()
    }

    /// Full PKCE login as the demo user; returns the token response.
    pub async fn login(&self, dpop_key: Option<&SigningKey>) -> Value {
        let pkce = Pkce::new();
        let response = self
            .authorize(&authorize_params(&pkce), "alice_wire", &self.password)
            .await;
        assert_eq!(response.status(), 303);
        let code = location_params(&response)["code"].clone();
        let form = token_form(&code, &pkce.verifier);
        let proof = dpop_key.map(|k| {
            DpopClaims::new("POST", &self.url("/token"), self.now())
                .sign(k)
                .unwrap()
        });
        let response = self.token_request(&form, proof).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    /// Answers a consent page (`allow` or `deny`).
    pub async fn answer_consent(&self, ticket: &str, action: &str) -> reqwest::Response {
        self.client
            .post(self.url("/authorize/consent"))
            .form(&[("ticket", ticket), ("action", action)])
            .send()
            .await
            .unwrap()
    }

    /// Logs `user` in to `client_id` asking for `scope`, allowing the consent page if there is
    /// one, and redeems the code; returns the token response.
    pub async fn login_as(
        &self,
        client_id: &str,
        scope: &str,
        user: &str,
        password: &str,
    ) -> Value {
        let pkce = Pkce::new();
        let mut response = self
            .authorize(&params_for(&pkce, client_id, scope), user, password)
            .await;
        if response.status() == 200 {
            let page = response.text().await.unwrap();
            response = self.answer_consent(&ticket_of(&page), "allow").await;
        }
        assert_eq!(response.status(), 303);
        let code = location_params(&response)["code"].clone();
        let response = self
            .token_request(&token_form_for(client_id, &code, &pkce.verifier), None)
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    /// The ID token's claims (signature checked against `/jwks`) and the `/userinfo` answer of
    /// a fresh login of `user` to `client_id` asking for `scope`.
    pub async fn claims_of_login(
        &self,
        client_id: &str,
        scope: &str,
        user: &str,
        password: &str,
    ) -> (Map<String, Value>, Map<String, Value>) {
        let tokens = self.login_as(client_id, scope, user, password).await;
        let id = self.verified_id_token(&tokens).await;
        let response = self
            .client
            .get(self.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let info: Value = response.json().await.unwrap();
        (id, info.as_object().unwrap().clone())
    }

    /// The claims of the `id_token` of a token response, its signature checked with the key
    /// `/jwks` publishes.
    pub async fn verified_id_token(&self, tokens: &Value) -> Map<String, Value> {
        let jwks = self.get_json("/jwks").await;
        let key = &proto::jwk::JwkSet::from_json(&jwks).unwrap().keys[0];
        let id_token = tokens["id_token"].as_str().expect("an id_token");
        proto::jws::UnverifiedJws::from_compact(id_token)
            .unwrap()
            .verify(key)
            .unwrap()
            .claims()
            .unwrap()
            .0
    }

    pub async fn bearer_login(&self) -> String {
        self.login(None).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn register_device(&self, token: &str) -> (String, String) {
        let response = self
            .client
            .post(self.url("/clients"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["client_id"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn nonce(&self, token: &str, device: &str) -> String {
        let response = self
            .client
            .head(self.url(&format!("/clients/{device}/nonce")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.headers()["replay-nonce"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// A correct Wire proof for the demo user's device, made the way Wire clients make it
    /// (iat/nbf an hour back, exp an hour ahead).
    pub fn wire_proof_claims(&self, device: &str, client_id: &str, nonce: &str) -> DpopClaims {
        let now = self.now();
        let mut c = DpopClaims::new(
            "POST",
            &self.url(&format!("/clients/{device}/access-token")),
            now - 3600,
        );
        c.nbf = Some(now - 3600);
        c.exp = Some(now + 3600);
        c.nonce = Some(nonce.into());
        c.wire = Some(WireClaims {
            chal: "OysCZNnV2iJTYfjmTUJZ6vavXXkzPFLf".into(),
            sub: client_id.into(),
            aud: CHALLENGE_URL.into(),
            handle: format!("wireapp://%40alice_wire@{DOMAIN}"),
            team: Some("wire".into()),
            name: "Alice Smith".into(),
        });
        c
    }

    pub async fn access_token(&self, token: &str, device: &str, proof: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/clients/{device}/access-token")))
            .bearer_auth(token)
            .header("DPoP", proof)
            .send()
            .await
            .unwrap()
    }
}

pub fn token_form(code: &str, verifier: &str) -> Vec<(&'static str, String)> {
    token_form_for("wireapp", code, verifier)
}

/// The token request redeeming `code` for the public client `client_id`.
pub fn token_form_for(client_id: &str, code: &str, verifier: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("client_id", client_id.into()),
        ("code_verifier", verifier.into()),
    ]
}

/// The consent ticket of a consent page.
pub fn ticket_of(page: &str) -> String {
    let start = page.find(r#"name="ticket" value=""#).unwrap() + r#"name="ticket" value=""#.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// The claims of a signed JWT, unverified (the tests read what the server put in).
pub fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&proto::b64::decode(payload, "payload").unwrap()).unwrap()
}

/// Adds a user (password `password`) to a stopped server's store, as `user add` does.
pub fn add_user(store: &dyn authz_server::store::Store, handle: &str, password: &str) {
    authz_server::users::add(
        store,
        &authz_server::users::NewUser {
            handle,
            name: handle,
            team: None,
            domain: DOMAIN,
            password: &proto::secret::SecretString::new(password),
        },
    )
    .unwrap();
}

pub fn account_key() -> SigningKey {
    SigningKey::generate(Algorithm::EdDsa).unwrap()
}

/// Asserts a Wire error response with this status and label.
pub async fn assert_wire_error(response: reqwest::Response, status: u16, label: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["label"], label, "{body}");
    assert!(body.get("token").is_none());
}

/// Starts a server binary and waits for the stdout line starting with `ready_prefix`; returns
/// the child and the rest of that line. Stdout keeps being drained so the server never writes
/// into a closed pipe.
pub async fn spawn_server(
    program: &str,
    args: &[&str],
    ready_prefix: &str,
) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(rest) = line.strip_prefix(ready_prefix) {
            let rest = rest.to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, rest);
        }
    }
    panic!("{program} exited before printing {ready_prefix:?}");
}

/// Starts the `authz-server` binary `program` in dev mode on the data directory `data`,
/// listening on `listen`; returns the process and its public URL.
pub async fn spawn_dev_server(
    program: &str,
    data: &Path,
    listen: &str,
) -> (tokio::process::Child, String) {
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "serve",
        "--dev",
        "--listen",
        listen,
        "--domain",
        DOMAIN,
    ];
    spawn_server(program, &args, "authz-server listening on ").await
}

/// Stops a server with SIGTERM and asserts a graceful exit (status 0).
pub async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        child.wait().await.unwrap().success(),
        "graceful shutdown exits 0"
    );
}

/// Runs an operator command of the server binary `program` on the data directory `data`, with
/// `stdin` as its standard input (closed at once when `None`); returns (success, stdout,
/// stderr).
pub async fn operator_command(
    program: &str,
    data: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        server_kit::process::input_given(input.write_all(text.as_bytes()).await).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs an interop client (`program script` in `tests/interop`) with `envs` to completion
/// within `limit`; asserts it succeeded and returns its stdout.
pub async fn run_interop(
    program: &str,
    script: &str,
    envs: &[(&str, String)],
    limit: std::time::Duration,
) -> String {
    let interop = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
    let child = tokio::process::Command::new(program)
        .arg(script)
        .current_dir(interop)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} must be installed (`cargo xtask test` installs it): {e}")
        });
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish in time"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value of the hidden field `name` on a page.
pub fn field_value(page: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// The hidden field `name` of the form whose button says `button` on `page`.
pub fn form_field(page: &str, button: &str, name: &str) -> String {
    let end = page
        .find(button)
        .unwrap_or_else(|| panic!("no {button:?} in {page}"));
    let form = &page[page[..end].rfind("<form").unwrap()..end];
    let marker = format!(r#"name="{name}" value=""#);
    let start = form.find(&marker).unwrap() + marker.len();
    form[start..].split('"').next().unwrap().to_owned()
}
