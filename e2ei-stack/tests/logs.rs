//! What the servers write about a full enrollment: both run as processes with `RUST_LOG=trace`
//! (every level of every crate, ours and our dependencies) while a device fails one login,
//! enrolls, and revokes its certificate. Then:
//!
//! - no secret is in any log or audit line: not the passwords, not a JWT of any kind (access
//!   token, ID token, DPoP proof, JWS: they all start `eyJ`), not an authorization code in a
//!   query, not the account or credential private key (PKCS#8 as base64url or hex, PEM, a JWK
//!   `d`), not a bearer credential;
//! - the audit logs hold, as JSON lines with their time: the failed and the successful login,
//!   the device registration, the token issuance (user and Wire client token), the account, the
//!   certificate issuance with the leaf's serial and the revocation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use client_sdk::{Enrollment, Login, Step};
use e2ei_stack::bench::procs;
use proto::clock::{Clock, SystemClock};
use proto::jws::SigningKey;
use proto::secret::SecretString;
use serde_json::{Value, json};
use support::Servers;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first JOSE header in `text`: a base64url run that starts with `eyJ` (`{"`) and decodes
/// to a JSON object, as the first part of every JWT and JWS does. Random identifiers in the logs
/// contain `eyJ` now and then, so the three letters alone are not the test.
fn jose_header(text: &str) -> Option<String> {
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices("eyJ").find_map(|(at, _)| {
        let run: String = text[at..].chars().take_while(|&c| base64url(c)).collect();
        let bytes = proto::b64::decode(&run, "header").ok()?;
        serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes)
            .ok()
            .map(|_| run)
    })
}

#[test]
fn a_jose_header_is_found_and_an_identifier_that_contains_its_letters_is_not() {
    let jwt = "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    assert_eq!(jose_header(jwt), Some("eyJhbGciOiJFUzI1NiJ9".into()));
    let flattened = r#"{"protected":"eyJhbGciOiJFZERTQSJ9","payload":""}"#;
    assert!(jose_header(flattened).is_some());
    assert_eq!(jose_header("order 4kDeyJq9_zQ1xw issued"), None);
}

fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_enrollment_leaves_no_secret_in_the_logs_and_an_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let started = SystemClock.now();
    let servers = Servers::start(dir.path(), 1, "", Some(&logs)).await;

    // A failed login, then the enrollment, then the revocation.
    let wrong_password = "not the password of bench0";
    let mut wrong = servers.sdk_config(0);
    wrong.login = Login::Password {
        username: "bench0".into(),
        password: SecretString::new(wrong_password),
    };
    assert!(Enrollment::new(wrong).run().await.is_err());
    let enrolled = Enrollment::new(servers.sdk_config(0)).run().await.unwrap();
    let account_key =
        SigningKey::from_pkcs8_der(enrolled.algorithm.jose(), enrolled.account_key.expose())
            .unwrap();
    let (acme, _, directory) = servers.acme_account(account_key).await;
    let leaf = x509_parser::pem::Pem::iter_from_buffer(enrolled.chain_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    acme.post(
        Step::Download,
        &directory.revoke_cert.unwrap(),
        Some(&json!({ "certificate": proto::b64::encode(&leaf.contents), "reason": 4 })),
    )
    .await
    .unwrap();
    // Two refusals, whose reasons the request log events carry.
    let http = servers.http();
    let unauthenticated = http
        .get(format!("{}/userinfo", servers.authz_url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let directory_doc: Value = http
        .get(&servers.directory)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let not_a_jws = http
        .post(directory_doc["newAccount"].as_str().unwrap())
        .header("content-type", "application/jose+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_jws.status(), 400);
    let Servers {
        mut authz,
        mut acme,
        ..
    } = servers;
    assert!(authz.remove(0).terminate().await.success());
    assert!(acme.remove(0).terminate().await.success());
    let finished = SystemClock.now();

    let authz_audit = dir.path().join("authz/audit.jsonl");
    let acme_audit = dir.path().join("acme/audit.jsonl");
    let files = [
        logs.join("authz.log"),
        logs.join("acme.log"),
        authz_audit.clone(),
        acme_audit.clone(),
    ];
    let password = procs::password(0);
    let (account_der, credential_der) = (
        enrolled.account_key.expose(),
        enrolled.credential_key.expose(),
    );
    let secrets: Vec<(&str, String)> = vec![
        ("the password", password.clone()),
        ("the wrong password", wrong_password.into()),
        ("an authorization code in a query", "code=".into()),
        ("a bearer credential", "Bearer ".into()),
        ("a PEM private key", "PRIVATE KEY".into()),
        ("a private JWK", "\"d\":".into()),
        (
            "the account key (base64url)",
            proto::b64::encode(account_der),
        ),
        ("the account key (hex)", hex(account_der)),
        (
            "the credential key (base64url)",
            proto::b64::encode(credential_der),
        ),
        ("the credential key (hex)", hex(credential_der)),
    ];
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert_eq!(
            jose_header(&text),
            None,
            "a JWT or JWS is in {}",
            file.display()
        );
        for (what, secret) in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} is in {}",
                file.display()
            );
        }
    }
    // The logs are really at trace level and cover the enrollment.
    let authz_log = std::fs::read_to_string(logs.join("authz.log")).unwrap();
    let acme_log = std::fs::read_to_string(logs.join("acme.log")).unwrap();
    assert!(authz_log.contains("TRACE") && acme_log.contains("TRACE"));
    assert!(authz_log.contains("client access token issued"));
    assert!(acme_log.contains("certificate issued"));
    let refusal_logged = |log: &str, path: &str, reason: &str| {
        log.lines().any(|l| {
            l.contains("request") && l.contains(path) && l.contains("reason=") && l.contains(reason)
        })
    };
    assert!(
        refusal_logged(&authz_log, "/userinfo", "invalid token"),
        "the 401's reason is not in the authz-server's request log"
    );
    assert!(
        refusal_logged(
            &acme_log,
            "new-account",
            "urn:ietf:params:acme:error:malformed"
        ),
        "the 400's reason is not in the acme-server's request log"
    );

    let authz_lines = audit_lines(&authz_audit);
    let acme_lines = audit_lines(&acme_audit);
    for line in authz_lines.iter().chain(&acme_lines) {
        let at = line["at"].as_i64().unwrap();
        assert!((started..=finished).contains(&at), "{line}");
    }
    assert_eq!(events(&authz_lines, "login.failed")[0]["handle"], "bench0");
    let logged_in = events(&authz_lines, "login.succeeded");
    let user = logged_in[0]["user"].as_str().unwrap();
    let registered = events(&authz_lines, "device.registered");
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0]["user"], user);
    assert_eq!(registered[0]["device"], enrolled.device.id.as_str());
    let tokens = events(&authz_lines, "token.issued");
    assert!(
        tokens
            .iter()
            .any(|t| t["grant"] == "authorization_code" && t["user"] == user)
    );
    assert!(
        tokens
            .iter()
            .any(|t| t["grant"] == "wire-client" && t["device"] == enrolled.device.id.as_str())
    );

    let serial: String = enrolled
        .certificate
        .serial
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_lowercase();
    let account = events(&acme_lines, "account.created");
    assert_eq!(
        account[0]["account"],
        enrolled.account_url.rsplit('/').next().unwrap()
    );
    let issued = events(&acme_lines, "certificate.issued");
    assert_eq!(issued.len(), 1);
    assert_eq!(
        issued[0]["serial"]
            .as_str()
            .unwrap()
            .trim_start_matches('0'),
        serial.trim_start_matches('0')
    );
    assert_eq!(
        issued[0]["identity"],
        enrolled.identity.client_id().to_uri()
    );
    let revoked = events(&acme_lines, "certificate.revoked");
    assert_eq!(revoked[0]["serial"], issued[0]["serial"]);
    assert_eq!(revoked[0]["reason"], 4);
}
