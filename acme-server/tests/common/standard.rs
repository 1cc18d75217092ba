//! Standard (dns/ip) orders against the real server: an acme-server with standard orders on,
//! validating on loopback, and a small http-01 responder played by the test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use proto::acme::{Authorization, Challenge, ChallengeStatus, Order, OrderStatus};
use proto::clock::SystemClock;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Account, Acme, header};

/// Key authorizations the responder serves, by token.
pub type Served = Arc<Mutex<HashMap<String, String>>>;

/// An acme-server with standard orders on, validated on loopback, and the test's http-01
/// responder.
pub struct Fixture {
    pub server: acme_server::RunningServer,
    pub dir: tempfile::TempDir,
    pub client: Acme,
    /// What the responder serves.
    pub served: Served,
    /// How many requests the responder received.
    pub requests: Arc<AtomicUsize>,
    /// The Host headers the responder received.
    pub hosts: Arc<std::sync::Mutex<Vec<String>>>,
    /// The responder's port (the server's `validation.http_port`).
    pub http_port: u16,
    /// The database under `E2EI_TEST_STORE=postgres`.
    _pg: Option<Arc<server_kit::testing::TestPostgres>>,
}

/// Answers `GET /.well-known/acme-challenge/<token>` from `served`, 404 otherwise; counts the
/// requests and records their Host headers.
async fn responder(
    listener: tokio::net::TcpListener,
    served: Served,
    requests: Arc<AtomicUsize>,
    hosts: Arc<std::sync::Mutex<Vec<String>>>,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        requests.fetch_add(1, Ordering::SeqCst);
        let (served, hosts) = (served.clone(), hosts.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Some(host) = head.lines().find_map(|l| {
                l.strip_prefix("host: ")
                    .or_else(|| l.strip_prefix("Host: "))
            }) {
                hosts.lock().unwrap().push(host.trim().to_owned());
            }
            let token = head
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.strip_prefix("/.well-known/acme-challenge/"))
                .unwrap_or_default()
                .to_owned();
            let body = served.lock().unwrap().get(&token).cloned();
            let response = match body {
                Some(b) => format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                    b.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .into(),
            };
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

impl Fixture {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The fixture with the configuration edited before the server starts (after the
    /// responder's port and the loopback set-up are in).
    pub async fn start_with(edit: impl FnOnce(&mut acme_server::Config)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_port = listener.local_addr().unwrap().port();
        let served: Served = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let hosts = Arc::default();
        tokio::spawn(responder(
            listener,
            served.clone(),
            requests.clone(),
            Arc::clone(&hosts),
        ));
        let dir = tempfile::tempdir().unwrap();
        let mut config = acme_server::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_owned(),
            dev: true,
            ..acme_server::Config::default()
        };
        config.wire_dpop.backend_jwks_url = Some("https://127.0.0.1:9/jwks".into());
        let pg = server_kit::testing::postgres_if_asked();
        if let Some(pg) = &pg {
            config.store = pg.store_config(None);
        }
        super::loopback_standard_orders(&mut config);
        config.validation.http_port = http_port;
        config.validation.timeout = 5;
        edit(&mut config);
        let server = acme_server::start(config, Arc::new(SystemClock))
            .await
            .unwrap();
        let client =
            Acme::connect(server.dev_tls_ca.as_ref().unwrap(), &server.directory_url).await;
        Self {
            server,
            dir,
            client,
            served,
            requests,
            hosts,
            http_port,
            _pg: pg,
        }
    }

    /// The same responder on `[::1]` (same port), for IPv6 identifiers.
    pub async fn also_on_ipv6(&self) {
        let listener = tokio::net::TcpListener::bind(("::1", self.http_port))
            .await
            .expect("IPv6 loopback (::1) must be available");
        tokio::spawn(responder(
            listener,
            self.served.clone(),
            self.requests.clone(),
            self.hosts.clone(),
        ));
    }

    pub fn serve(&self, account: &Account, challenge: &Challenge) {
        let keyauth = proto::wire_id::key_authorization(
            &challenge.token,
            &account.key.public_jwk().thumbprint(),
        );
        self.served
            .lock()
            .unwrap()
            .insert(challenge.token.clone(), keyauth);
    }

    pub async fn order(&self, account: &Account, ids: &[(&str, &str)]) -> (String, Order) {
        let ids: Vec<Value> = ids
            .iter()
            .map(|(kind, value)| json!({"type": kind, "value": value}))
            .collect();
        let response = self
            .client
            .post_as(
                account,
                &self.client.directory.new_order.clone(),
                Some(&json!({ "identifiers": ids })),
            )
            .await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        let url = header(&response, "location");
        (url, response.json().await.unwrap())
    }

    /// Validates every authorization of `order` with http-01.
    pub async fn validate(&self, account: &Account, order: &Order) {
        for url in &order.authorizations {
            let authz: Authorization = self.client.get(account, url).await;
            let http = authz
                .challenges
                .iter()
                .find(|c| c.kind == "http-01")
                .unwrap();
            self.serve(account, http);
            let response = self.client.answer(account, &http.url, json!({})).await;
            let challenge: Challenge = response.json().await.unwrap();
            assert_eq!(challenge.status, ChallengeStatus::Valid, "{challenge:?}");
        }
    }

    /// A DER CSR for `names` with a fresh key; (csr, key).
    pub fn csr(names: &[&str]) -> (Vec<u8>, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        (params.serialize_request(&key).unwrap().der().to_vec(), key)
    }

    /// Validates `order`, finalizes it with a CSR for `names` and waits for issuance; the valid
    /// order and the certificate key.
    pub async fn finalize(
        &self,
        account: &Account,
        order_url: &str,
        order: &Order,
        names: &[&str],
    ) -> (Order, rcgen::KeyPair) {
        self.validate(account, order).await;
        let (csr, key) = Self::csr(names);
        let response = self
            .client
            .post_as(
                account,
                &order.finalize,
                Some(&super::finalize_payload(&csr)),
            )
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        (self.issued(account, order_url, response).await, key)
    }

    /// A certificate's PEM chain and its leaf's DER.
    pub async fn chain(&self, account: &Account, cert_url: &str) -> (String, Vec<u8>) {
        let chain = self
            .client
            .post_as(account, cert_url, None)
            .await
            .text()
            .await
            .unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
        (chain, pem.contents)
    }

    /// Issues a certificate for `names`; (chain PEM, leaf DER, leaf key).
    pub async fn issue(
        &self,
        account: &Account,
        names: &[&str],
    ) -> (String, Vec<u8>, rcgen::KeyPair) {
        let ids: Vec<(&str, &str)> = names.iter().map(|n| ("dns", *n)).collect();
        let (order_url, order) = self.order(account, &ids).await;
        let (order, key) = self.finalize(account, &order_url, &order, names).await;
        let (chain, leaf) = self.chain(account, &order.certificate.unwrap()).await;
        (chain, leaf, key)
    }

    /// The order once issuance ended: a finalize answers `processing` with `Retry-After`, and
    /// the order is polled until it leaves that state (bounded).
    pub async fn issued(
        &self,
        account: &Account,
        order_url: &str,
        finalize: reqwest::Response,
    ) -> Order {
        let processing = finalize.headers().get("retry-after").is_some();
        let mut order: Order = finalize.json().await.unwrap();
        assert!(
            processing && order.status == OrderStatus::Processing,
            "standard orders are issued in the background"
        );
        for _ in 0..500 {
            if order.status != OrderStatus::Processing {
                break;
            }
            order = self.client.get(account, order_url).await;
        }
        assert_eq!(order.status, OrderStatus::Valid);
        order
    }

    /// The serials in the CRL at `path` (`crl`: the identity CA's, `crl/names`: the name CA's).
    pub async fn crl_serials(&self, path: &str) -> Vec<String> {
        let url = self.client.directory_url.replace("directory", path);
        let der = self
            .client
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        use x509_parser::prelude::FromDer;
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
        crl.iter_revoked_certificates()
            .map(|r| r.raw_serial_as_string().replace(':', ""))
            .collect()
    }
}
