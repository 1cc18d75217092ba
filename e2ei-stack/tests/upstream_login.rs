//! A whole Wire enrollment whose user logs in through an upstream identity provider (issue 18):
//! the authz-server brokers node-oidc-provider (npm `oidc-provider`, `authz-server/tests/interop`,
//! `upstream_idp.mjs`) with `first_login = "create"`; the device's login UI — a cookie-keeping
//! client playing the user's browser — presses "Sign in with …" on our login page, logs in on
//! the provider's own pages and comes back with our code. The `wire-oidc-01` ID token is then
//! issued inside the session of that login: the UI sees our login page once, the provider once.
//! `cargo xtask test` installs node and the package; missing, the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_sdk::login::{AuthorizationUi, BoxFuture, Redirect, UrlFor};
use client_sdk::{Enrollment, Login};
use e2ei_stack::stack::{DOMAIN, Options, Stack};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

mod provider_pages;

use provider_pages::{location, through_provider};

const CLIENT_ID: &str = "e2ei-broker";
const SECRET: &str = "upstream-client-secret-0123456789abcdef";

/// The user's browser: our pages over TLS, the provider's over loopback HTTP.
struct Browser {
    http: reqwest::Client,
    authz: String,
    login: &'static str,
    /// Each page it was shown, in order: "login page", "provider", "straight back".
    seen: Mutex<Vec<&'static str>>,
}

impl Browser {
    async fn follow(&self, url: String, redirect_uri: &str) -> Result<String, String> {
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_redirection() {
            let location = location(&response);
            if location.starts_with(redirect_uri) {
                self.seen.lock().unwrap().push("straight back");
                return Ok(location);
            }
            return Err(format!("an unexpected redirect to {location}"));
        }
        self.seen.lock().unwrap().push("login page");
        let page = response.text().await.map_err(|e| e.to_string())?;
        let start = page
            .find(r#"action="/upstream/start""#)
            .ok_or("no upstream button on the login page")?;
        let form = &page[start..page[start..].find("</form>").unwrap() + start];
        let fields = hidden_fields(form);
        let response = self
            .http
            .post(format!("{}/upstream/start", self.authz))
            .form(&fields)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let url = location(&response);
        self.seen.lock().unwrap().push("provider");
        let callback = through_provider(&self.http, url, self.login, &self.authz).await?;
        let back = self
            .http
            .get(&callback)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(location(&back))
    }
}

impl AuthorizationUi for Browser {
    fn authorize<'a>(&'a self, url_for: UrlFor<'a>) -> BoxFuture<'a, Result<Redirect, String>> {
        let redirect_uri = authz_server::demo::DEMO_REDIRECT_URI;
        let url = url_for(redirect_uri);
        Box::pin(async move {
            Ok(Redirect {
                redirect_uri: redirect_uri.to_owned(),
                location: self.follow(url, redirect_uri).await?,
            })
        })
    }
}

/// The hidden inputs of a form, unescaped.
fn hidden_fields(form: &str) -> Vec<(String, String)> {
    form.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|input| {
            let attr = |name: &str| {
                let marker = format!(r#"{name}=""#);
                let start = input.find(&marker).unwrap() + marker.len();
                input[start..].split('"').next().unwrap().to_owned()
            };
            let unescape = |v: String| {
                v.replace("&quot;", "\"")
                    .replace("&#39;", "'")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
            };
            (unescape(attr("name")), unescape(attr("value")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrolls_for_a_user_who_logs_in_through_an_upstream() {
    let interop = concat!(env!("CARGO_MANIFEST_DIR"), "/../authz-server/tests/interop");
    assert!(
        std::path::Path::new(interop)
            .join("node_modules/oidc-provider")
            .exists(),
        "run `npm ci` in {interop} (`cargo xtask test` does)"
    );
    let mut idp = tokio::process::Command::new("node")
        .arg("upstream_idp.mjs")
        .current_dir(interop)
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", SECRET)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed (`cargo xtask test` installs it)");
    let mut lines = BufReader::new(idp.stdout.take().unwrap()).lines();
    let listening = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the provider's listening line")
        .unwrap()
        .unwrap();
    let issuer = listening.strip_prefix("listening ").unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("corp-secret");
    server_kit::files::write_private(&secret, SECRET.as_bytes()).unwrap();
    let upstream = toml::from_str(&format!(
        "id = \"corp\"\ndisplay_name = \"Corp\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\n\
         client_id = \"{CLIENT_ID}\"\nclient_secret_file = \"{}\"\nfirst_login = \"create\"\n",
        secret.display()
    ))
    .unwrap();
    let stack = Stack::start_with(
        dir.path(),
        Options {
            upstreams: vec![upstream],
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let authz = stack.authz.base_url.clone();
    let stdin = idp.stdin.as_mut().unwrap();
    stdin
        .write_all(format!("{authz}/upstream/callback\n").as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));

    let tls = server_kit::tls::client_config(&stack.tls_roots()).unwrap();
    let browser = Arc::new(Browser {
        http: reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        authz,
        login: "erin",
        seen: Mutex::new(Vec::new()),
    });
    let mut config = stack.demo_config();
    config.login = Login::Interactive(browser.clone());
    let enrolled = Enrollment::new(config).run().await.unwrap();
    assert_eq!(enrolled.identity.handle().handle(), "erin");
    assert_eq!(enrolled.identity.name(), "Upstream erin");
    assert_eq!(
        enrolled.certificate.subject,
        format!("O={DOMAIN}, CN=Upstream erin")
    );
    // Our login page and the provider once; the ID token of wire-oidc-01 inside the session.
    assert_eq!(
        *browser.seen.lock().unwrap(),
        ["login page", "provider", "straight back"]
    );
    stack.shutdown().await.unwrap();
}
