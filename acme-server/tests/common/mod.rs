//! Real servers for the ACME tests: the authz-server (backend and OpenID Provider) and the
//! acme-server, both on 127.0.0.1 over TLS with their stores in temp dirs and one shared
//! `FixedClock`, and an ACME client built from `proto` that speaks to them the way a device
//! does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../../../authz-server/tests/common/mod.rs"]
pub mod authz;
pub mod standard;

use std::path::Path;
use std::sync::Mutex;

use acme_server::{Config, RunningServer};
use proto::acme::{Authorization, Challenge, Directory, Identifier, Order};
use proto::acme_jws::{KeyId, sign_request};
use proto::jws::{Algorithm, SigningKey};
use proto::wire_id::{ClientId, HandleUri, WireIdentity};
use serde_json::{Value, json};

pub use authz::{DOMAIN, Harness, http_client};

/// The demo user's identity at the authz-server.
pub const HANDLE: &str = "alice_wire";
pub const NAME: &str = "Alice Smith";

/// The acme-server configuration for a harness's authz-server.
pub fn acme_config(authz: &Harness, dir: &Path) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        dev: true,
        domains: vec![DOMAIN.into()],
        trust_anchors: vec![authz.dir.path().join("tls/ca.pem")],
        terms_of_service: Some("https://example.test/tos".into()),
        website: Some("https://example.test".into()),
        ..Config::default()
    };
    c.wire_dpop.target = format!("{}/clients/{{device-id}}/access-token", authz.base);
    c.wire_dpop.backend_jwks_url = Some(format!("{}/jwks", authz.base));
    c.wire_oidc.issuer = authz.base.clone();
    if let Some(pg) = &authz.pg {
        c.store = pg.store_config(None);
    }
    c
}

/// Standard (dns/ip) orders on and validated on this machine: the address policy admits
/// loopback (the test responders listen on 127.0.0.1) and `resolve_to` sends every name there.
pub fn loopback_standard_orders(config: &mut Config) {
    config.standard_orders.enabled = true;
    config.validation.allowed_networks =
        vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    config.validation.resolve_to = Some("127.0.0.1".parse().unwrap());
}

/// Both servers.
pub struct Env {
    pub authz: Harness,
    pub acme: Option<RunningServer>,
    pub acme_dir: tempfile::TempDir,
    pub client: Acme,
}

impl Env {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        Self::start_configured(|_| {}, edit).await
    }

    /// Both servers, each configuration edited before its server starts.
    pub async fn start_configured(
        edit_authz: impl FnOnce(&mut authz_server::Config),
        edit: impl FnOnce(&mut Config),
    ) -> Self {
        let authz = Harness::start_with(edit_authz).await;
        let acme_dir = tempfile::tempdir().unwrap();
        let mut config = acme_config(&authz, acme_dir.path());
        edit(&mut config);
        let acme = acme_server::start(config, authz.clock.clone())
            .await
            .unwrap();
        let client = Acme::connect(acme.dev_tls_ca.as_ref().unwrap(), &acme.directory_url).await;
        Self {
            authz,
            acme: Some(acme),
            acme_dir,
            client,
        }
    }

    pub fn now(&self) -> i64 {
        self.authz.now()
    }

    /// Logs the demo user in and registers a device: (bearer token, device id, client id).
    pub async fn device(&self) -> (String, String, ClientId) {
        let bearer = self.authz.bearer_login().await;
        let (device, client_id) = self.authz.register_device(&bearer).await;
        (bearer, device, ClientId::parse(&client_id).unwrap())
    }

    /// A backend access token for `challenge`, obtained the Wire way: backend nonce, DPoP
    /// proof signed with the ACME account key, `POST /clients/{device}/access-token`.
    pub async fn access_token(
        &self,
        bearer: &str,
        device: &str,
        client_id: &ClientId,
        account_key: &SigningKey,
        challenge: &Challenge,
    ) -> String {
        let nonce = self.authz.nonce(bearer, device).await;
        let mut claims = self
            .authz
            .wire_proof_claims(device, &client_id.to_uri(), &nonce);
        claims.htu = challenge.target.clone().unwrap();
        let wire = claims.wire.as_mut().unwrap();
        wire.chal = challenge.token.clone();
        wire.aud = challenge.url.clone();
        let proof = claims.sign(account_key).unwrap();
        let response = self.authz.access_token(bearer, device, &proof).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// An ID token from the OpenID Provider carrying `keyauth` and `acme_aud`.
    pub async fn id_token(&self, keyauth: &str, acme_aud: &str) -> String {
        let pkce = authz::Pkce::new();
        let mut params = authz::authorize_params(&pkce);
        let claims = json!({"id_token": {
            "keyauth": {"essential": true, "value": keyauth},
            "acme_aud": {"essential": true, "value": acme_aud},
        }});
        params.push(("claims", claims.to_string()));
        let response = self
            .authz
            .authorize(&params, HANDLE, &self.authz.password)
            .await;
        assert_eq!(response.status(), 303);
        let code = authz::location_params(&response)["code"].clone();
        let response = self
            .authz
            .token_request(&authz::token_form(&code, &pkce.verifier), None)
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["id_token"].as_str().unwrap().to_owned()
    }
}

/// The two identifiers of an identity order for the demo user's device.
pub fn identifiers(client_id: &ClientId) -> Vec<Identifier> {
    let handle = HandleUri::new(HANDLE, DOMAIN).unwrap();
    WireIdentity::new(client_id.clone(), handle, NAME, None)
        .unwrap()
        .acme_identifiers()
}

/// An ACME account: its key and its URL (`kid`).
pub struct Account {
    pub key: SigningKey,
    pub kid: String,
}

/// A small ACME client over `proto` (no retries: tests see every response).
pub struct Acme {
    pub http: reqwest::Client,
    pub directory: Directory,
    pub directory_url: String,
    nonce: Mutex<Option<String>>,
}

impl Acme {
    pub async fn connect(ca: &Path, directory_url: &str) -> Self {
        let http = http_client(ca);
        let response = http.get(directory_url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let directory = response.json().await.unwrap();
        Self {
            http,
            directory,
            directory_url: directory_url.to_owned(),
            nonce: Mutex::new(None),
        }
    }

    /// A nonce from newNonce.
    pub async fn fresh_nonce(&self) -> String {
        let response = self
            .http
            .head(&self.directory.new_nonce)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        header(&response, "replay-nonce")
    }

    async fn nonce(&self) -> String {
        let saved = self.nonce.lock().unwrap().take();
        match saved {
            Some(n) => n,
            None => self.fresh_nonce().await,
        }
    }

    /// Drops the saved nonce (after the clock jumped past its lifetime).
    pub fn forget_nonce(&self) {
        self.nonce.lock().unwrap().take();
    }

    /// Sends a signed body as is.
    pub async fn send(&self, url: &str, body: String) -> reqwest::Response {
        let response = self
            .http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(body)
            .send()
            .await
            .unwrap();
        if let Some(n) = response.headers().get("replay-nonce") {
            *self.nonce.lock().unwrap() = Some(n.to_str().unwrap().to_owned());
        }
        response
    }

    /// Signs and sends; `payload` `None` is a POST-as-GET.
    pub async fn post(
        &self,
        url: &str,
        key: &SigningKey,
        key_id: KeyId<'_>,
        payload: Option<&Value>,
    ) -> reqwest::Response {
        let nonce = self.nonce().await;
        let body = sign_request(key, key_id, &nonce, url, payload).unwrap();
        self.send(url, body).await
    }

    /// POST as an account.
    pub async fn post_as(
        &self,
        account: &Account,
        url: &str,
        payload: Option<&Value>,
    ) -> reqwest::Response {
        self.post(url, &account.key, KeyId::Kid(&account.kid), payload)
            .await
    }

    pub async fn new_account_with(&self, alg: Algorithm) -> Account {
        let key = proto::test_keys::key_for(alg);
        let response = self
            .post(
                &self.directory.new_account.clone(),
                &key,
                KeyId::Jwk,
                Some(&json!({"termsOfServiceAgreed": true, "contact": ["mailto:alice@wire.com"]})),
            )
            .await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        let kid = header(&response, "location");
        Account { key, kid }
    }

    pub async fn new_account(&self) -> Account {
        self.new_account_with(Algorithm::EdDsa).await
    }

    /// newOrder; (order URL, order).
    pub async fn new_order(&self, account: &Account, ids: &[Identifier]) -> (String, Order) {
        let response = self
            .post_as(
                account,
                &self.directory.new_order.clone(),
                Some(&json!({"identifiers": ids})),
            )
            .await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        let url = header(&response, "location");
        (url, response.json().await.unwrap())
    }

    pub async fn get<T: serde::de::DeserializeOwned>(&self, account: &Account, url: &str) -> T {
        let response = self.post_as(account, url, None).await;
        assert_eq!(response.status(), 200, "{url}: {:?}", response.text().await);
        response.json().await.unwrap()
    }

    /// The order's (device, user) authorizations.
    pub async fn authzs(&self, account: &Account, order: &Order) -> (Authorization, Authorization) {
        let a: Authorization = self.get(account, &order.authorizations[0]).await;
        let b: Authorization = self.get(account, &order.authorizations[1]).await;
        if a.identifier.kind == "wireapp-device" {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// Answers a challenge.
    pub async fn answer(&self, account: &Account, url: &str, answer: Value) -> reqwest::Response {
        self.post_as(account, url, Some(&answer)).await
    }
}

/// Sends signed `bodies` to `url` all at once, each on a task of its own; the responses in the
/// order they arrived.
pub async fn post_all(client: &Acme, url: &str, bodies: Vec<String>) -> Vec<reqwest::Response> {
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        let http = client.http.clone();
        let url = url.to_owned();
        tasks.spawn(async move {
            http.post(url)
                .header("content-type", "application/jose+json")
                .body(body)
                .send()
                .await
                .unwrap()
        });
    }
    let mut responses = Vec::new();
    while let Some(response) = tasks.join_next().await {
        responses.push(response.unwrap());
    }
    responses
}

pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts a problem document of this status and type (the name after the ACME URN prefix).
pub async fn assert_problem(response: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert!(response.headers().get("replay-nonce").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("urn:ietf:params:acme:error:{kind}"),
        "{body}"
    );
    body
}

/// What goes into a test CSR.
pub struct CsrSpec {
    pub organization: Option<String>,
    pub display_name: Option<String>,
    pub uris: Vec<String>,
    pub dns: Vec<String>,
}

impl CsrSpec {
    /// The correct CSR contents for the demo user's device.
    pub fn for_device(client_id: &ClientId) -> Self {
        Self {
            organization: Some(DOMAIN.into()),
            display_name: Some(NAME.into()),
            uris: vec![
                client_id.to_uri(),
                HandleUri::new(HANDLE, DOMAIN).unwrap().to_uri(),
            ],
            dns: Vec::new(),
        }
    }

    /// The DER CSR signed by `key`.
    pub fn sign(&self, key: &rcgen::KeyPair) -> Vec<u8> {
        use rcgen::{CertificateParams, DnType, SanType};
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(o) = &self.organization {
            params
                .distinguished_name
                .push(DnType::OrganizationName, o.as_str());
        }
        if let Some(n) = &self.display_name {
            params.distinguished_name.push(
                DnType::CustomDnType(vec![2, 16, 840, 1, 113_730, 3, 1, 241]),
                rcgen::DnValue::Utf8String(n.clone()),
            );
        }
        for uri in &self.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into().unwrap()));
        }
        for dns in &self.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.as_str().try_into().unwrap()));
        }
        params.serialize_request(key).unwrap().der().to_vec()
    }
}

/// A fresh credential key (P-256).
pub fn credential_key() -> rcgen::KeyPair {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

/// The finalize payload for a DER CSR.
pub fn finalize_payload(der: &[u8]) -> Value {
    json!({ "csr": proto::b64::encode(der) })
}

/// A device with an ACME account and an identity order, and the order's challenges.
pub struct Enrollment {
    pub bearer: String,
    pub device: String,
    pub client_id: ClientId,
    pub account: Account,
    pub order_url: String,
    pub order: Order,
    pub dpop: Challenge,
    pub oidc: Challenge,
}

impl Env {
    /// Device, account, order, authorizations: everything up to the challenges.
    pub async fn begin(&self) -> Enrollment {
        let (bearer, device, client_id) = self.device().await;
        let account = self.client.new_account().await;
        let (order_url, order) = self
            .client
            .new_order(&account, &identifiers(&client_id))
            .await;
        let (device_authz, user_authz) = self.client.authzs(&account, &order).await;
        Enrollment {
            bearer,
            device,
            client_id,
            account,
            order_url,
            order,
            dpop: device_authz.challenges[0].clone(),
            oidc: user_authz.challenges[0].clone(),
        }
    }

    /// Answers the `wire-dpop-01` challenge correctly.
    pub async fn pass_dpop(&self, e: &Enrollment) {
        let token = self
            .access_token(&e.bearer, &e.device, &e.client_id, &e.account.key, &e.dpop)
            .await;
        let response = self
            .client
            .answer(&e.account, &e.dpop.url, json!({ "access_token": token }))
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    /// Answers the `wire-oidc-01` challenge correctly.
    pub async fn pass_oidc(&self, e: &Enrollment) {
        let keyauth = proto::wire_id::key_authorization(
            &e.oidc.token,
            &e.account.key.public_jwk().thumbprint(),
        );
        let id_token = self.id_token(&keyauth, &e.oidc.url).await;
        let response = self
            .client
            .answer(&e.account, &e.oidc.url, json!({ "id_token": id_token }))
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    /// An enrollment whose order is `ready`.
    pub async fn ready(&self) -> Enrollment {
        let e = self.begin().await;
        self.pass_dpop(&e).await;
        self.pass_oidc(&e).await;
        let order: Order = self.client.get(&e.account, &e.order_url).await;
        assert_eq!(order.status, proto::acme::OrderStatus::Ready);
        e
    }

    /// Finalizes with `der`.
    pub async fn finalize(&self, e: &Enrollment, der: &[u8]) -> reqwest::Response {
        self.client
            .post_as(&e.account, &e.order.finalize, Some(&finalize_payload(der)))
            .await
    }
}

/// The ARI certID of a DER certificate (RFC 9773 §4.1).
pub fn cert_id(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .unwrap();
    format!(
        "{}.{}",
        proto::b64::encode(aki),
        proto::b64::encode(cert.raw_serial())
    )
}
