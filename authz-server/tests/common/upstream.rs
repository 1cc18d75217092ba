//! The federation tests' upstream: node-oidc-provider (npm `oidc-provider`, pinned in
//! tests/interop) run as a real upstream on 127.0.0.1 (`tests/interop/upstream_idp.mjs`, its
//! development login and consent pages), the authz-server in-process over TLS with an
//! `[[upstream]]` pointing at it, and a reqwest client with a cookie store playing the browser:
//! our `/authorize` → the login page's "Sign in with …" button → the upstream's login and
//! consent forms → our callback. `cargo xtask test` installs node and the package (`npm ci` in
//! tests/interop); missing, the tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::PathBuf;

use authz_server::Config;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use super::*;

pub const UPSTREAM_CLIENT_ID: &str = "e2ei-broker";
pub const UPSTREAM_SECRET: &str = "upstream-client-secret-0123456789abcdef";

/// The upstream IdP process and what the test reads of it.
pub struct Idp {
    pub child: Child,
    pub issuer: String,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Idp {
    /// Starts `upstream_idp.mjs` (with `tamper`, its ID tokens have that defect) and waits for
    /// its listening line.
    pub async fn spawn(tamper: Option<&str>) -> Self {
        Self::spawn_with(tamper, &[]).await
    }

    /// [`Self::spawn`] with more of the script's environment (`CLIENT_AUTH`, `CLIENT_JWKS`,
    /// `ACCESS_TOKEN_TTL`).
    pub async fn spawn_with(tamper: Option<&str>, env: &[(&str, String)]) -> Self {
        let interop = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
        assert!(
            std::path::Path::new(interop)
                .join("node_modules/oidc-provider")
                .exists(),
            "run `npm ci` in {interop} (`cargo xtask test` does)"
        );
        let mut command = tokio::process::Command::new("node");
        command
            .arg("upstream_idp.mjs")
            .current_dir(interop)
            .env("CLIENT_ID", UPSTREAM_CLIENT_ID)
            .env("CLIENT_SECRET", UPSTREAM_SECRET)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        if let Some(mode) = tamper {
            command.env("TAMPER", mode);
        }
        command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!("node must be installed (`cargo xtask test` installs it): {e}")
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().expect("a listening line");
        let issuer = line.strip_prefix("listening ").expect(&line).to_owned();
        Self {
            child,
            issuer,
            lines,
        }
    }

    /// GETs or POSTs one of the script's test routes (`/test/…`); its JSON.
    pub async fn test_route(&self, method: reqwest::Method, path: &str) -> Value {
        let response = plain_http()
            .request(method, format!("{}{path}", self.issuer))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    /// Gives the upstream our callback URL and waits until it serves.
    pub async fn configure(&mut self, callback: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{callback}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        self.expect_line("ready").await;
    }

    /// Waits for the script's next line on its standard output, which must be `expected`.
    pub async fn expect_line(&mut self, expected: &str) {
        let line = self.lines.next_line().await.unwrap();
        assert_eq!(line.as_deref(), Some(expected));
    }
}

/// Makes the `[[upstream]]` TOML from the upstream's issuer and the client secret's file.
pub type UpstreamToml = Box<dyn FnOnce(&str, &std::path::Path) -> String>;

/// What upstream a test runs: the script's tampering and environment, and the
/// `[[upstream]]` TOML made from the upstream's issuer and the client secret's file.
pub struct Setup {
    pub tamper: Option<&'static str>,
    pub idp_env: Vec<(&'static str, String)>,
    pub upstream: UpstreamToml,
}

impl Setup {
    /// An `oidc` upstream with `first_login`, `client_secret_basic`.
    pub fn oidc(first_login: &'static str) -> Self {
        Self {
            tamper: None,
            idp_env: Vec::new(),
            upstream: Box::new(move |issuer, secret| upstream_config(issuer, secret, first_login)),
        }
    }

    /// [`Self::oidc`] with the TOML lines `extra` after the upstream's.
    pub fn oidc_with(first_login: &'static str, extra: &'static str) -> Self {
        Self {
            upstream: Box::new(move |issuer, secret| {
                format!("{}{extra}", upstream_config(issuer, secret, first_login))
            }),
            ..Self::oidc(first_login)
        }
    }
}

/// The authz-server with one upstream, the upstream, and a browser.
pub struct Federation {
    pub h: Harness,
    pub idp: Idp,
    pub browser: reqwest::Client,
    pub secrets: tempfile::TempDir,
}

/// The `[[upstream]]` of the tests, its secret in `secret_file`.
pub fn upstream_config(issuer: &str, secret_file: &std::path::Path, first_login: &str) -> String {
    let auth = format!("client_secret_file = \"{}\"\n", secret_file.display());
    oidc_upstream(issuer, first_login, &auth)
}

/// An `oidc` `[[upstream]]` of the tests authenticating with the TOML lines `auth`.
pub fn oidc_upstream(issuer: &str, first_login: &str, auth: &str) -> String {
    format!(
        r#"
id = "corp"
display_name = "Corp <IdP>"
kind = "oidc"
issuer = "{issuer}"
client_id = "{UPSTREAM_CLIENT_ID}"
first_login = "{first_login}"
{auth}"#
    )
}

impl Federation {
    pub async fn start(
        tamper: Option<&'static str>,
        first_login: &'static str,
        edit: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_seeded(tamper, first_login, edit, |_| {}).await
    }

    /// [`Self::start`] with users and clients added to the store first.
    pub async fn start_seeded(
        tamper: Option<&'static str>,
        first_login: &'static str,
        edit: impl FnOnce(&mut Config),
        seed: impl FnOnce(&dyn authz_server::store::Store),
    ) -> Self {
        let setup = Setup {
            tamper,
            ..Setup::oidc(first_login)
        };
        Self::launch(setup, edit, seed).await
    }

    /// The upstream of `setup` and our server with its `[[upstream]]`, `edit`ed, the store
    /// `seed`ed first.
    pub async fn launch(
        setup: Setup,
        edit: impl FnOnce(&mut Config),
        seed: impl FnOnce(&dyn authz_server::store::Store),
    ) -> Self {
        let mut idp = Idp::spawn_with(setup.tamper, &setup.idp_env).await;
        let secrets = tempfile::tempdir().unwrap();
        let secret_file = secrets.path().join("corp-secret");
        server_kit::files::write_private(&secret_file, UPSTREAM_SECRET.as_bytes()).unwrap();
        let upstream = toml::from_str(&(setup.upstream)(&idp.issuer, &secret_file)).unwrap();
        let h = Harness::start_seeded(
            |c| {
                c.upstream = vec![upstream];
                edit(c);
            },
            seed,
        )
        .await;
        idp.configure(&h.url("/upstream/callback")).await;
        let browser = browser(&h);
        Self {
            h,
            idp,
            browser,
            secrets,
        }
    }

    /// Our login page for a fresh request of the demo client.
    pub async fn login_page(&self, pkce: &Pkce) -> String {
        login_page(&self.browser, &self.h, pkce, "openid profile email").await
    }

    /// Our login page → the upstream link → the upstream's authorization URL.
    pub async fn to_upstream(&self, pkce: &Pkce) -> String {
        let page = self.login_page(pkce).await;
        self.upstream_button(&page).await
    }

    /// Our login page for the authorization request `params` → its first upstream's button →
    /// the upstream's authorization URL.
    pub async fn to_upstream_for(&self, params: &[(&str, String)]) -> String {
        let response = self
            .browser
            .get(self.h.url("/authorize"))
            .query(params)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "our login page");
        self.upstream_button(&response.text().await.unwrap()).await
    }

    /// The first "Sign in with …" button of our login `page`, pressed: the upstream's URL.
    async fn upstream_button(&self, page: &str) -> String {
        let response = self
            .browser
            .post(self.h.url("/upstream/start"))
            .form(&start_form(page))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{:?}", response.text().await);
        let location = location(&response);
        assert!(location.starts_with(&self.idp.issuer), "{location}");
        location
    }

    /// Logs `login` in at the upstream (its login, then consent form) from its authorization
    /// URL `url`; with `abort`, the user cancels at the login form instead. Returns the URL the
    /// upstream sends the browser back to (our callback), not yet followed.
    pub async fn upstream_login(&self, url: String, login: &str, abort: bool) -> String {
        self.upstream_login_in(&self.browser, url, login, abort)
            .await
    }

    /// [`Self::upstream_login`] in another browser.
    pub async fn upstream_login_in(
        &self,
        browser: &reqwest::Client,
        mut url: String,
        login: &str,
        abort: bool,
    ) -> String {
        for _ in 0..12 {
            if url.starts_with(&self.h.base) {
                return url;
            }
            let response = browser.get(&url).send().await.unwrap();
            if response.status().is_redirection() {
                url = resolve(&url, &location(&response));
                continue;
            }
            assert_eq!(response.status(), 200, "{url}");
            let page = response.text().await.unwrap();
            let form = if page.contains(r#"name="prompt" value="login""#) {
                if abort {
                    url = format!("{}/abort", url.trim_end_matches('/'));
                    continue;
                }
                vec![("prompt", "login"), ("login", login), ("password", "any")]
            } else if page.contains(r#"name="prompt" value="consent""#) {
                vec![("prompt", "consent")]
            } else {
                panic!("an unexpected upstream page:\n{page}");
            };
            let response = browser.post(&url).form(&form).send().await.unwrap();
            assert!(response.status().is_redirection(), "{}", response.status());
            url = resolve(&url, &location(&response));
        }
        panic!("the upstream never sent the browser back");
    }

    /// The browser at `url`.
    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.browser.get(url).send().await.unwrap()
    }

    /// A whole login of `login` through the upstream: our answer to the callback.
    pub async fn log_in(&self, pkce: &Pkce, login: &str) -> reqwest::Response {
        let at_upstream = self.to_upstream(pkce).await;
        let callback = self.upstream_login(at_upstream, login, false).await;
        self.get(&callback).await
    }

    /// Signs this browser out of our server (RP-initiated logout, confirmed on its page).
    pub async fn sign_out(&self) {
        let page = self
            .browser
            .get(self.h.url("/logout"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let token = field_value(&page, "csrf");
        let done = self
            .browser
            .post(self.h.url("/logout"))
            .form(&[("csrf", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
    }

    /// Redeems the code of a successful login at our `/token`; the ID token's claims.
    pub async fn tokens_of(
        &self,
        response: &reqwest::Response,
        pkce: &Pkce,
    ) -> serde_json::Map<String, Value> {
        let tokens = self.token_answer(response, pkce).await;
        self.h.verified_id_token(&tokens).await
    }

    /// Redeems the code of a successful login at our `/token`; our token response.
    pub async fn token_answer(&self, response: &reqwest::Response, pkce: &Pkce) -> Value {
        assert_eq!(response.status(), 303);
        let params = location_params(response);
        assert_eq!(params["state"], "st-1");
        assert_eq!(params["iss"], self.h.base);
        let code = params.get("code").expect("a code");
        let response = self
            .h
            .token_request(&token_form(code, &pkce.verifier), None)
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Stops our server and opens its store.
    pub async fn stopped_store(
        mut self,
    ) -> (std::sync::Arc<dyn authz_server::store::Store>, String) {
        self.h.server.take().unwrap().shutdown().await.unwrap();
        let store = self.h.open_store();
        let audit = std::fs::read_to_string(self.h.dir.path().join("audit.jsonl")).unwrap();
        (store, audit)
    }
}

/// The login page of `h` the `browser` gets for a fresh request of the demo client for `scope`.
pub async fn login_page(
    browser: &reqwest::Client,
    h: &Harness,
    pkce: &Pkce,
    scope: &str,
) -> String {
    let response = browser
        .get(h.url("/authorize"))
        .query(&params_for(pkce, "wireapp", scope))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// A client for the upstream's plain-HTTP loopback routes.
pub fn plain_http() -> reqwest::Client {
    server_kit::tls::https_client(&[], std::time::Duration::from_secs(10)).unwrap()
}

/// A browser: the dev CA trusted, cookies kept, redirects not followed.
pub fn browser(h: &Harness) -> reqwest::Client {
    let ca: PathBuf = h.dir.path().join("tls/ca.pem");
    let tls = server_kit::tls::client_config(&[ca]).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The fields of the login page's first "Sign in with …" form (its hidden inputs, unescaped).
pub fn start_form(page: &str) -> Vec<(String, String)> {
    let at = page
        .find(r#"<form method="post" action="/upstream/start">"#)
        .expect(page);
    let form = &page[at..at + page[at..].find("</form>").unwrap()];
    form.split("<input ")
        .skip(1)
        .map(|input| (attribute(input, "name"), attribute(input, "value")))
        .collect()
}

/// The value of the attribute `name` of an HTML tag, unescaped.
pub fn attribute(tag: &str, name: &str) -> String {
    let start = tag.find(&format!(r#"{name}=""#)).unwrap() + name.len() + 2;
    let raw = &tag[start..start + tag[start..].find('"').unwrap()];
    raw.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

pub fn resolve(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .into()
}

/// The error redirect to the demo client: its `error` and `error_description`.
pub fn client_error(response: &reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 303);
    assert!(
        location(response).starts_with(REDIRECT_URI),
        "{}",
        location(response)
    );
    let params = location_params(response);
    assert_eq!(params["state"], "st-1");
    assert!(!params.contains_key("code"));
    (params["error"].clone(), params["error_description"].clone())
}

/// The upstream logins a stopped server's store holds.
pub fn waiting_logins(store: &dyn authz_server::store::Store) -> Vec<(String, Vec<u8>)> {
    store
        .scan_prefix(authz_server::store::trees::UPSTREAM_LOGINS, "")
        .unwrap()
}

/// The users of a stopped server's store, by handle.
pub fn handles(store: &dyn authz_server::store::Store) -> Vec<String> {
    let mut handles: Vec<String> = authz_server::users::list(store)
        .unwrap()
        .into_iter()
        .map(|u| u.handle)
        .collect();
    handles.sort();
    handles
}
