//! The operator's client commands with scope lists, on the real `authz-server` binary: `client
//! add --scope`, `client list`, `client set-scopes` (which keeps the secret), a refused scope
//! that stores nothing — and the running server granting exactly the listed scopes; and the
//! token exchange upstreams of a client (`client add --token-exchange`, `client
//! set-token-exchange`), its remote verifiers (`--remote-auth`, `client set-remote-auth`) and
//! its JWT-bearer issuers (`--jwt-bearer`, `client set-jwt-bearer`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Runs an operator command on `data` without input; returns (success, stdout, stderr).
async fn operator(data: &Path, args: &[&str]) -> (bool, String, String) {
    operator_command(env!("CARGO_BIN_EXE_authz-server"), data, args, None).await
}

/// Serves `data` in dev mode; returns the process and a client for it.
async fn serve(data: &Path) -> (tokio::process::Child, String, reqwest::Client) {
    let (child, url) =
        spawn_dev_server(env!("CARGO_BIN_EXE_authz-server"), data, "127.0.0.1:0").await;
    (child, url, http_client(&data.join("tls/ca.pem")))
}

/// A client-credentials request of `svc` for `scope`: (status, body).
async fn client_credentials(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    scope: &str,
) -> (u16, Value) {
    let response = client
        .post(format!("{url}/token"))
        .basic_auth("svc", Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn operators_list_and_change_the_scopes_a_client_may_be_granted() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out, _) = operator(
        data.path(),
        &[
            "client",
            "add",
            "--id",
            "svc",
            "--confidential",
            "--scope",
            "api read",
        ],
    )
    .await;
    assert!(ok);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client secret "))
        .unwrap()
        .to_owned();
    let (ok, _, _) = operator(
        data.path(),
        &[
            "client",
            "add",
            "--id",
            "partner",
            "--third-party",
            "--redirect-uri",
            "https://partner.example/cb",
        ],
    )
    .await;
    assert!(ok);
    // A value that is no scope-token: refused, nothing stored.
    let (ok, _, stderr) = operator(
        data.path(),
        &[
            "client",
            "add",
            "--id",
            "bad",
            "--confidential",
            "--scope",
            "api \"admin\"",
        ],
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("RFC 6749"), "{stderr}");

    let (ok, listed, _) = operator(data.path(), &["client", "list"]).await;
    assert!(ok);
    assert!(
        listed.contains("svc\tfirst-party confidential\tapi read\t"),
        "{listed}"
    );
    // No list given: the default, which for a third-party client lacks the device scope.
    assert!(
        listed.contains(
            "partner\tthird-party public\topenid profile email offline_access wire_client_id\thttps://partner.example/cb"
        ),
        "{listed}"
    );
    assert!(!listed.contains("bad\t"), "{listed}");

    let (child, url, client) = serve(data.path()).await;
    assert_eq!(
        client_credentials(&client, &url, &secret, "read api")
            .await
            .0,
        200
    );
    let (status, body) = client_credentials(&client, &url, &secret, "admin").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    stop(child).await;

    // New scopes for the client, same secret.
    let (ok, _, _) = operator(
        data.path(),
        &["client", "set-scopes", "--id", "svc", "--scope", "admin"],
    )
    .await;
    assert!(ok);
    let (ok, _, stderr) = operator(
        data.path(),
        &["client", "set-scopes", "--id", "nobody", "--scope", "x"],
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("no client nobody"), "{stderr}");

    let (child, url, client) = serve(data.path()).await;
    let (status, body) = client_credentials(&client, &url, &secret, "admin").await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("admin")));
    let (status, body) = client_credentials(&client, &url, &secret, "api").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    stop(child).await;
}

/// The token exchange column of the client `sync` in `client list`.
async fn exchange_listed(data: &Path) -> String {
    listed_column(data, "sync", 4).await
}

/// Column `column` (0: the id; 4, 5, 6: token exchange, remote verifiers, JWT-bearer issuers)
/// of the client `id` in `client list`.
async fn listed_column(data: &Path, id: &str, column: usize) -> String {
    let (_, listed, _) = operator(data, &["client", "list"]).await;
    let line = listed
        .lines()
        .find(|l| l.starts_with(&format!("{id}\t")))
        .expect(&listed);
    line.split('\t').nth(column).unwrap().to_owned()
}

/// `client set-token-exchange` of `sync` with `upstreams`: (success, stderr).
async fn set_exchange(data: &Path, upstreams: &[&str]) -> (bool, String) {
    let mut args = vec!["client", "set-token-exchange", "--id", "sync"];
    for upstream in upstreams {
        args.extend(["--token-exchange", upstream]);
    }
    let (ok, _, stderr) = operator(data, &args).await;
    (ok, stderr)
}

#[tokio::test]
async fn operators_allow_a_confidential_client_token_exchange_for_named_upstreams() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let (ok, _, stderr) = operator(
        data,
        &[
            "client",
            "add",
            "--id",
            "sync",
            "--confidential",
            "--token-exchange",
            "github",
            "--token-exchange",
            "corp",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(exchange_listed(data).await, "github corp");
    // Only confidential clients, and only upstream ids.
    let (ok, _, stderr) = operator(
        data,
        &[
            "client",
            "add",
            "--id",
            "app",
            "--redirect-uri",
            "https://app.example/cb",
            "--token-exchange",
            "corp",
        ],
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("--confidential"), "{stderr}");
    let (ok, stderr) = set_exchange(data, &["Not An Id"]).await;
    assert!(!ok);
    assert!(stderr.contains("is not an upstream id"), "{stderr}");
    // Changed on the existing client, then taken away.
    assert!(set_exchange(data, &["corp"]).await.0);
    assert_eq!(exchange_listed(data).await, "corp");
    assert!(set_exchange(data, &[]).await.0);
    assert_eq!(exchange_listed(data).await, "-");
    let (ok, _, stderr) = operator(data, &["client", "set-token-exchange", "--id", "nobody"]).await;
    assert!(!ok);
    assert!(stderr.contains("no client nobody"), "{stderr}");
}

#[tokio::test]
async fn operators_allow_clients_remote_verifiers_and_jwt_bearer_issuers() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    // A public client with a remote verifier needs no redirect URI.
    let (ok, _, stderr) = operator(
        data,
        &["client", "add", "--id", "game", "--remote-auth", "mc"],
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(listed_column(data, "game", 5).await, "mc");
    assert_eq!(listed_column(data, "game", 6).await, "-");
    // JWT-bearer issuers only for confidential clients.
    let (ok, _, stderr) = operator(
        data,
        &["client", "add", "--id", "svc", "--jwt-bearer", "partner"],
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("--confidential"), "{stderr}");
    let (ok, _, stderr) = operator(
        data,
        &[
            "client",
            "set-jwt-bearer",
            "--id",
            "game",
            "--jwt-bearer",
            "partner",
        ],
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("only a confidential client"), "{stderr}");
    let (ok, _, stderr) = operator(
        data,
        &[
            "client",
            "add",
            "--id",
            "svc",
            "--confidential",
            "--jwt-bearer",
            "partner",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(listed_column(data, "svc", 6).await, "partner");
    // Changed, checked, and taken away.
    let (ok, _, stderr) = operator(
        data,
        &[
            "client",
            "set-remote-auth",
            "--id",
            "game",
            "--remote-auth",
            "Bad Id",
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        stderr.contains("is not an upstream id, a verifier id"),
        "{stderr}"
    );
    let set = |args: &'static [&'static str]| operator(data, args);
    assert!(
        set(&[
            "client",
            "set-remote-auth",
            "--id",
            "svc",
            "--remote-auth",
            "mc",
            "--remote-auth",
            "stuck"
        ])
        .await
        .0
    );
    assert_eq!(listed_column(data, "svc", 5).await, "mc stuck");
    assert!(set(&["client", "set-jwt-bearer", "--id", "svc"]).await.0);
    assert_eq!(listed_column(data, "svc", 6).await, "-");
    assert!(set(&["client", "set-remote-auth", "--id", "svc"]).await.0);
    assert_eq!(listed_column(data, "svc", 5).await, "-");
    let (ok, _, stderr) = operator(data, &["client", "set-remote-auth", "--id", "nobody"]).await;
    assert!(!ok);
    assert!(stderr.contains("no client nobody"), "{stderr}");
}
