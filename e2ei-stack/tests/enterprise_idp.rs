//! `wire-oidc-01` with an ID token from an organisation's own OpenID Provider (issue 18 item 6):
//! node-oidc-provider (npm `oidc-provider`, pinned in `bench-peers/`) runs over HTTPS on
//! 127.0.0.1 as `bench-peers/enterprise_idp.mjs`, configured as Wire's Keycloak mapper is — it
//! echoes `keyauth` and `acme_aud` from the `claims` request parameter into the ID token and
//! carries `name` and `preferred_username`. The acme-server's `wire_oidc.issuer` is that provider
//! (its TLS root among the acme-server's trust anchors); the authz-server still logs the user in
//! for the device, the backend nonce and the DPoP access token. The SDK gets the ID token from
//! the provider through an `AuthorizationUi` that drives the provider's development login and
//! consent pages with a cookie-keeping reqwest client.
//!
//! Then the refusals, each with the ACME problem the acme-server answers the `wire-oidc-01`
//! answer with: a provider that does not echo `keyauth`, one that echoes another `acme_aud`
//! (through a confidential client), and one whose user has another display name than the
//! authz-server's. `cargo xtask test` installs node and the package (`npm ci` in
//! `bench-peers/`); missing, the tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_sdk::login::{AuthorizationUi, BoxFuture, Redirect, UrlFor};
use client_sdk::{Cause, Enrolled, Enrollment, Error, IdTokenProvider, Observer, Step};
use e2ei_stack::stack::{DOMAIN, IdProvider, Options, Stack};
use proto::secret::SecretString;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

mod provider_pages;

use provider_pages::through_provider;

/// The device application's client at the provider (also the acme-server's
/// `wire_oidc.client_id`).
const CLIENT_ID: &str = "wire-device";
/// Its redirect URI: a native client's loopback redirect, which the test's UI catches (the
/// provider lets a loopback redirect of a native client name any port, RFC 8252 §7.3, as the
/// `e2ei-enroll` CLI's listener does).
const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// Where the provider's redirects to the device begin.
const LOOPBACK: &str = "http://127.0.0.1";
const INCORRECT_RESPONSE: &str = "urn:ietf:params:acme:error:incorrectResponse";
const REJECTED_IDENTIFIER: &str = "urn:ietf:params:acme:error:rejectedIdentifier";

/// How the provider is set up for one test.
struct Setup {
    /// `ECHO` of the script: `both`, `no-keyauth`, `wrong-acme-aud`.
    echo: &'static str,
    /// The display name the provider has for the demo user.
    name: &'static str,
    /// A confidential client with this secret; `None`: a public client.
    secret: Option<&'static str>,
}

const FAITHFUL: Setup = Setup {
    echo: "both",
    name: "Alice Smith",
    secret: None,
};

/// The provider process; killed when dropped.
struct Idp {
    _child: Child,
    issuer: String,
    tls_root: PathBuf,
}

impl Idp {
    /// Starts `enterprise_idp.mjs` on a dev TLS certificate made under `dir` and waits for its
    /// `listening` line.
    async fn spawn(dir: &Path, setup: &Setup) -> Self {
        let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/bench-peers");
        assert!(
            Path::new(peers).join("node_modules/oidc-provider").exists(),
            "run `npm ci` in {peers} (`cargo xtask test` does)"
        );
        let tls = server_kit::tls::ensure_dev_tls(&dir.join("idp"), None).unwrap();
        let users = json!({
            "alice_wire": {
                "name": setup.name,
                "preferred_username": format!("alice_wire@{DOMAIN}"),
            }
        });
        // Node 20 now and then stops for good right after making the provider's RSA key
        // (reproduced outside the tests: about 1 start in 60 waits on a futex forever, before
        // it reads its certificate). That is node's start-up, not a server of ours: a start
        // that prints nothing for 20 s is killed and made again, at most three times.
        let mut attempts = 0;
        let (child, issuer, mut lines) = loop {
            attempts += 1;
            let mut command = tokio::process::Command::new("node");
            command
                .arg("enterprise_idp.mjs")
                .arg(&tls.cert)
                .arg(&tls.key)
                .current_dir(peers)
                .env("CLIENT_ID", CLIENT_ID)
                .env("REDIRECT_URI", REDIRECT_URI)
                .env("USERS", users.to_string())
                .env("ECHO", setup.echo)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .kill_on_drop(true);
            if let Some(secret) = setup.secret {
                command.env("CLIENT_SECRET", secret);
            }
            let mut child = command.spawn().unwrap_or_else(|e| {
                panic!("node must be installed (`cargo xtask test` installs it): {e}")
            });
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let listening = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    let line = lines
                        .next_line()
                        .await
                        .unwrap()
                        .expect("the provider exited before listening");
                    if let Some(issuer) = line.strip_prefix("listening ") {
                        return issuer.to_owned();
                    }
                }
            })
            .await;
            match listening {
                Ok(issuer) => break (child, issuer, lines),
                Err(_) if attempts < 3 => {
                    eprintln!("enterprise IdP: no listening line within 20 s; started again");
                    child.kill().await.unwrap();
                }
                Err(_) => panic!("the provider printed no listening line in {attempts} starts"),
            }
        };
        // Whatever it prints later goes to the test's output (a closed pipe would kill it).
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("enterprise IdP: {line}");
            }
        });
        Self {
            _child: child,
            issuer,
            tls_root: tls.ca_cert,
        }
    }
}

/// The user's browser at the provider: its TLS root trusted, cookies kept, redirects followed
/// by hand until the one to [`REDIRECT_URI`], which it hands back to the SDK.
struct IdpBrowser {
    http: reqwest::Client,
    login: &'static str,
    opened: Mutex<Vec<String>>,
}

impl IdpBrowser {
    fn new(tls_root: &Path, login: &'static str) -> Arc<Self> {
        let tls = server_kit::tls::client_config(&[tls_root.to_owned()]).unwrap();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Arc::new(Self {
            http,
            login,
            opened: Mutex::new(Vec::new()),
        })
    }

    /// The provider's pages from the authorization URL: the login form (any password), then the
    /// consent form; the loopback URL the provider finally sends the browser to.
    async fn log_in(&self, url: String) -> Result<String, String> {
        through_provider(&self.http, url, self.login, LOOPBACK).await
    }
}

impl AuthorizationUi for IdpBrowser {
    fn authorize<'a>(&'a self, url_for: UrlFor<'a>) -> BoxFuture<'a, Result<Redirect, String>> {
        let url = url_for(REDIRECT_URI);
        self.opened.lock().unwrap().push(url.clone());
        Box::pin(async move {
            Ok(Redirect {
                redirect_uri: REDIRECT_URI.to_owned(),
                location: self.log_in(url).await?,
            })
        })
    }
}

/// What each step reported.
#[derive(Default)]
struct Steps(Mutex<Vec<(Step, Result<String, Error>)>>);

impl Observer for Steps {
    fn finished(&self, step: Step, _elapsed: Duration, outcome: Result<&str, &Error>) {
        self.0
            .lock()
            .unwrap()
            .push((step, outcome.map(str::to_owned).map_err(Clone::clone)));
    }
}

/// One enrollment of the demo user with the ID token from a provider set up as `setup`: the
/// outcome, the step reports, the authorization URLs the provider's browser was given, and the
/// issuer.
struct Run {
    outcome: Result<Enrolled, Error>,
    steps: Vec<(Step, Result<String, Error>)>,
    opened: Vec<String>,
    issuer: String,
}

/// The provider set up as `setup`, and both servers with the acme-server taking ID tokens from
/// it.
async fn start(dir: &Path, setup: &Setup) -> (Idp, Stack) {
    let idp = Idp::spawn(dir, setup).await;
    let stack = Stack::start_with(
        dir,
        Options {
            id_provider: Some(IdProvider {
                issuer: idp.issuer.clone(),
                client_id: CLIENT_ID.into(),
                tls_root: idp.tls_root.clone(),
            }),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    (idp, stack)
}

async fn enroll_with(setup: &Setup) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (idp, stack) = start(dir.path(), setup).await;
    let browser = IdpBrowser::new(&idp.tls_root, "alice_wire");
    let mut provider = IdTokenProvider::new(idp.issuer.clone(), CLIENT_ID, browser.clone());
    provider.tls_roots = vec![idp.tls_root.clone()];
    provider.client_secret = setup.secret.map(SecretString::new);
    let mut config = stack.demo_config();
    config.id_token_provider = Some(provider);
    let steps = Arc::new(Steps::default());
    let outcome = Enrollment::new(config).observer(steps.clone()).run().await;
    stack.shutdown().await.unwrap();
    let steps = steps.0.lock().unwrap().clone();
    let opened = browser.opened.lock().unwrap().clone();
    Run {
        outcome,
        steps,
        opened,
        issuer: idp.issuer,
    }
}

/// The refusal of the `wire-oidc-01` answer: its ACME problem (type, detail).
fn oidc_refusal(run: &Run) -> (String, String) {
    let error = run.outcome.as_ref().expect_err("the enrollment must fail");
    assert_eq!(error.step, Step::OidcChallenge, "{error}");
    let Cause::Acme(problem) = &error.cause else {
        panic!("not an ACME problem: {error}");
    };
    // The provider did issue the token; the ACME server refused it.
    assert!(
        run.steps
            .iter()
            .any(|(s, o)| *s == Step::IdToken && o.is_ok())
    );
    (problem.kind.clone(), problem.detail.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrolls_with_an_id_token_from_the_organisations_provider() {
    let run = enroll_with(&FAITHFUL).await;
    let enrolled = run.outcome.as_ref().unwrap();
    // The certificate verified up to the identity root and certifies the authz-server's user,
    // whom the provider named the same.
    assert_eq!(
        enrolled.certificate.subject,
        format!("O={DOMAIN}, CN=Alice Smith")
    );
    assert_eq!(enrolled.identity.handle().handle(), "alice_wire");
    assert_eq!(enrolled.identity.name(), "Alice Smith");
    assert_eq!(enrolled.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
    // The ID token came from the provider, through its pages, once, with the claims request.
    let id_token_step = run.steps.iter().find(|(s, _)| *s == Step::IdToken).unwrap();
    assert_eq!(
        id_token_step.1.as_deref().unwrap(),
        format!("received from {}", run.issuer)
    );
    assert_eq!(run.opened.len(), 1, "{:?}", run.opened);
    let asked = url::Url::parse(&run.opened[0]).unwrap();
    assert!(asked.as_str().starts_with(&format!("{}/auth?", run.issuer)));
    let params: std::collections::HashMap<String, String> =
        asked.query_pairs().into_owned().collect();
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["scope"], "openid profile");
    let claims =
        proto::wire_claims::AcmeClaims::from_claims_parameter(Some(&params["claims"])).unwrap();
    let keyauth = claims.keyauth.expect("keyauth asked for");
    let acme_aud = claims.acme_aud.expect("acme_aud asked for");
    assert!(acme_aud.contains("/acme/wire/challenge/"), "{acme_aud}");
    // `keyauth` = challenge token "." thumbprint of the account key.
    let account_key = proto::jws::SigningKey::from_pkcs8_der(
        enrolled.algorithm.jose(),
        enrolled.account_key.expose(),
    )
    .unwrap();
    assert!(
        keyauth.ends_with(&format!(".{}", account_key.public_jwk().thumbprint())),
        "{keyauth}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_does_not_echo_keyauth_fails_wire_oidc_01() {
    let run = enroll_with(&Setup {
        echo: "no-keyauth",
        ..FAITHFUL
    })
    .await;
    assert_eq!(
        oidc_refusal(&run),
        (
            INCORRECT_RESPONSE.to_owned(),
            "wire-oidc-01: missing claim `keyauth`".to_owned()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_echoes_another_acme_aud_fails_wire_oidc_01() {
    // Through a confidential client this time (client_secret_basic at the token endpoint).
    let run = enroll_with(&Setup {
        echo: "wrong-acme-aud",
        secret: Some("device-client-secret-0123456789abcdef"),
        ..FAITHFUL
    })
    .await;
    assert_eq!(
        oidc_refusal(&run),
        (
            INCORRECT_RESPONSE.to_owned(),
            "wire-oidc-01: `acme_aud` does not match the challenge".to_owned()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_naming_the_user_otherwise_fails_wire_oidc_01() {
    let run = enroll_with(&Setup {
        name: "Alice Smythe",
        ..FAITHFUL
    })
    .await;
    assert_eq!(
        oidc_refusal(&run),
        (
            REJECTED_IDENTIFIER.to_owned(),
            "wire-oidc-01: `name` does not match".to_owned()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_configured_for_another_provider_than_the_acme_servers_stops_before_logging_in() {
    // The acme-server takes ID tokens from the authz-server (the default); the device is set up
    // for an enterprise provider, which is never contacted.
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    let browser = IdpBrowser::new(&stack.tls_roots()[0], "alice_wire");
    let elsewhere = "https://127.0.0.1:9/realms/corp";
    let mut config = stack.demo_config();
    config.id_token_provider = Some(IdTokenProvider::new(elsewhere, CLIENT_ID, browser.clone()));
    let error = Enrollment::new(config).run().await.unwrap_err();
    assert_eq!(error.step, Step::IdToken);
    assert_eq!(
        error.cause,
        Cause::Local(format!(
            "the ACME server takes ID tokens from {}, not from the configured provider {elsewhere}",
            stack.authz.base_url
        ))
    );
    assert!(browser.opened.lock().unwrap().is_empty());
    stack.shutdown().await.unwrap();
}

/// `e2ei-enroll --oidc-issuer …`: the user opens the printed URL in a browser, logs in at the
/// provider, and the provider's redirect reaches the CLI's loopback listener on a port of its
/// own choosing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_the_id_token_from_the_provider_through_a_loopback_redirect() {
    use tokio::io::AsyncWriteExt;

    let dir = tempfile::tempdir().unwrap();
    let (idp, stack) = start(dir.path(), &FAITHFUL).await;
    let device_dir = dir.path().join("device");
    let mut args = vec![
        "enroll".to_owned(),
        "--acme".into(),
        stack.acme.directory_url.clone(),
        "--authz".into(),
        stack.authz.base_url.clone(),
        "--ca-root".into(),
        stack.acme.ca_root.display().to_string(),
        "--user".into(),
        "alice_wire".into(),
        "--dir".into(),
        device_dir.display().to_string(),
        "--oidc-issuer".into(),
        idp.issuer.clone(),
        "--oidc-client-id".into(),
        CLIENT_ID.into(),
        "--oidc-tls-root".into(),
        idp.tls_root.display().to_string(),
    ];
    for root in stack.tls_roots() {
        args.push("--tls-root".into());
        args.push(root.display().to_string());
    }
    let mut child =
        tokio::process::Command::new(e2ei_stack::bench::procs::binary("e2ei-enroll").unwrap())
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(stack.demo_password.expose().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let prompt = format!("log in at {} in a browser: ", idp.issuer);
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = stderr
                .next_line()
                .await
                .unwrap()
                .expect("e2ei-enroll ended without showing the provider's URL");
            if let Some(url) = line.strip_prefix(&prompt) {
                return url.to_owned();
            }
        }
    })
    .await
    .expect("no login URL within 60 s");
    let browser = IdpBrowser::new(&idp.tls_root, "alice_wire");
    let back = browser.log_in(url).await.unwrap();
    assert!(back.contains("/callback?code="), "{back}");
    let landing = browser.http.get(&back).send().await.unwrap();
    assert_eq!(landing.status(), 200);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("ok")
            && l.contains("id-token")
            && l.contains(&format!("received from {}", idp.issuer))),
        "{stdout}"
    );
    assert!(stdout.contains("CN=Alice Smith"), "{stdout}");
    assert!(device_dir.join("chain.pem").exists());
    stack.shutdown().await.unwrap();
}
