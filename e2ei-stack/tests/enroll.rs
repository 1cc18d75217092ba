//! End-to-end enrollment with the SDK against both real servers on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use client_sdk::{Enrollment, KeyAlgorithm};
use e2ei_stack::stack::{DOMAIN, Stack};

#[tokio::test]
async fn a_device_enrolls_with_each_key_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    for algorithm in [
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::P256,
        KeyAlgorithm::P384,
    ] {
        let mut config = stack.demo_config();
        config.algorithm = algorithm;
        let enrolled = Enrollment::new(config).run().await.unwrap();
        assert_eq!(
            enrolled.certificate.subject,
            format!("O={DOMAIN}, CN=Alice Smith")
        );
        assert_eq!(enrolled.identity.handle().handle(), "alice_wire");
        assert!(enrolled.chain_pem.matches("BEGIN CERTIFICATE").count() == 2);
        let expected = match algorithm {
            KeyAlgorithm::Ed25519 => "Ed25519",
            KeyAlgorithm::P256 => "ECDSA P-256",
            KeyAlgorithm::P384 => "ECDSA P-384",
        };
        assert_eq!(enrolled.certificate.key_algorithm, expected);
    }
    stack.shutdown().await.unwrap();
}

/// The RFC 8252 loopback login: the "browser" here is a task that receives the authorization
/// URL, submits the login form as a browser would, and follows the redirect to the loopback
/// listener of the SDK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_enrolls_through_the_loopback_redirect() {
    use std::sync::{Arc, Mutex};

    use client_sdk::Login;
    use client_sdk::login::LoopbackBrowser;

    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    let password = stack.demo_password.expose().to_owned();
    let http =
        server_kit::tls::https_client(&stack.tls_roots(), std::time::Duration::from_secs(10))
            .unwrap();
    let opened = Arc::new(Mutex::new(Vec::<String>::new()));
    let browser = {
        let opened = opened.clone();
        let runtime = tokio::runtime::Handle::current();
        LoopbackBrowser::new(move |url: &str| {
            opened.lock().unwrap().push(url.to_owned());
            let (http, password, url) = (http.clone(), password.clone(), url.to_owned());
            runtime.spawn(async move {
                let parsed = url::Url::parse(&url).unwrap();
                let mut form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
                form.push(("username".into(), "alice_wire".into()));
                form.push(("password".into(), password));
                let action = format!(
                    "{}://{}{}",
                    parsed.scheme(),
                    parsed.authority(),
                    parsed.path()
                );
                let response = http.post(action).form(&form).send().await.unwrap();
                assert_eq!(response.status(), 303);
                let location = response.headers()["location"].to_str().unwrap().to_owned();
                assert!(location.starts_with("http://127.0.0.1:"));
                let landing = http.get(location).send().await.unwrap();
                assert_eq!(landing.status(), 200);
            });
        })
    };
    let mut config = stack.demo_config();
    config.login = Login::Interactive(Arc::new(browser));
    let enrolled = Enrollment::new(config).run().await.unwrap();
    assert_eq!(enrolled.identity.name(), "Alice Smith");
    let opened = opened.lock().unwrap().clone();
    assert_eq!(
        opened.len(),
        2,
        "one login, one ID token with the claims request"
    );
    assert!(opened[1].contains("claims="));
    stack.shutdown().await.unwrap();
}

/// A failed enrollment gives back the device it registered: nine enrollments that fail at their
/// last step (the chain does not verify against the root they were configured with) each remove
/// their device again, so the user — whose cap is eight devices — still enrolls afterwards.
/// Without the removal the ninth failure would already be `403 too-many-clients`.
#[tokio::test]
async fn failed_enrollments_leave_no_device_behind() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    let mut wrong_root = stack.demo_config();
    // A root, but not the CA's: the authz-server's dev TLS root.
    wrong_root.ca_root = stack.tls_roots()[0].clone();
    for attempt in 0..9 {
        let failed = Enrollment::new(wrong_root.clone()).run().await.unwrap_err();
        assert_eq!(
            failed.step,
            client_sdk::Step::Verify,
            "attempt {attempt}: {failed}"
        );
    }
    let enrolled = Enrollment::new(stack.demo_config()).run().await.unwrap();
    assert_eq!(enrolled.identity.handle().handle(), "alice_wire");
    stack.shutdown().await.unwrap();
}
