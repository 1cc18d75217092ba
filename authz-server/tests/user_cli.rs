//! The operator's user commands with email addresses, roles and groups, on the real
//! `authz-server` binary: `user add --email [--email-verified]`, `user set-email`,
//! `user set-roles`, `user list`, a malformed address or role refused before anything is stored — and the running server releasing the address with the `email`
//! scope only; `user link` of a configured source's identity (one account per identity, one
//! identity per source and account).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;

async fn operator(data: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    operator_command(env!("CARGO_BIN_EXE_authz-server"), data, args, stdin).await
}

fn add_args<'a>(handle: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "user", "add", "--handle", handle, "--name", handle, "--domain", DOMAIN,
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn operators_record_and_change_a_users_email_address() {
    let data = tempfile::tempdir().unwrap();
    let password = Some("a long password\n");
    let (ok, _, stderr) = operator(
        data.path(),
        &add_args("erin", &["--email", "erin@example.com", "--email-verified"]),
        password,
    )
    .await;
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = operator(data.path(), &add_args("frank", &[]), password).await;
    assert!(ok, "{stderr}");
    // A malformed address is refused, and the user is not created.
    let (ok, _, stderr) = operator(
        data.path(),
        &add_args("grace", &["--email", "grace at example.com"]),
        password,
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("is not an email address"), "{stderr}");
    // `--email-verified` says something about an address, so it needs one.
    let (ok, _, _) = operator(
        data.path(),
        &add_args("heidi", &["--email-verified"]),
        password,
    )
    .await;
    assert!(!ok);

    let (ok, _, _) = operator(
        data.path(),
        &[
            "user",
            "set-email",
            "--handle",
            "frank",
            "--email",
            "frank@example.org",
        ],
        None,
    )
    .await;
    assert!(ok);
    let (ok, listed, _) = operator(data.path(), &["user", "list"], None).await;
    assert!(ok);
    let line = |handle: &str| {
        listed
            .lines()
            .find(|l| l.split('\t').nth(1) == Some(handle))
            .map(str::to_owned)
    };
    assert!(
        line("erin").unwrap().ends_with("\terin@example.com\t-\t-"),
        "{listed}"
    );
    assert!(
        line("frank")
            .unwrap()
            .ends_with("\tfrank@example.org (unverified)\t-\t-"),
        "{listed}"
    );
    assert!(
        line("grace").is_none() && line("heidi").is_none(),
        "{listed}"
    );
    let (ok, _, stderr) = operator(
        data.path(),
        &[
            "user",
            "set-email",
            "--handle",
            "nobody",
            "--email",
            "n@example.org",
        ],
        None,
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("no user with handle nobody"), "{stderr}");

    // The running server: the address and whether it was verified, with `email` only.
    let (child, url) = spawn_dev_server(
        env!("CARGO_BIN_EXE_authz-server"),
        data.path(),
        "127.0.0.1:0",
    )
    .await;
    let h = Harness::attach(url, data.path());
    for (handle, email, verified) in [
        ("erin", "erin@example.com", true),
        ("frank", "frank@example.org", false),
    ] {
        let (id, info) = h
            .claims_of_login("wireapp", "openid email", handle, "a long password")
            .await;
        for claims in [&id, &info] {
            assert_eq!(claims["email"], email, "{claims:?}");
            assert_eq!(claims["email_verified"], verified, "{claims:?}");
        }
    }
    drop(h);
    stop(child).await;
}

#[tokio::test]
async fn operators_set_and_clear_roles_and_groups() {
    let data = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = operator(
        data.path(),
        &add_args("ivy", &[]),
        Some("a long password\n"),
    )
    .await;
    assert!(ok, "{stderr}");
    let set = |args: &'static [&'static str]| {
        let mut all = vec!["user", "set-roles", "--handle", "ivy"];
        all.extend_from_slice(args);
        let data = data.path().to_owned();
        async move { operator(&data, &all, None).await }
    };
    let (ok, _, stderr) = set(&["--role", "admin", "--role", "auditor", "--group", "ops"]).await;
    assert!(ok, "{stderr}");
    let (_, listed, _) = operator(data.path(), &["user", "list"], None).await;
    let line = listed.lines().find(|l| l.contains("\tivy\t")).unwrap();
    assert!(line.ends_with("\tadmin,auditor\tops"), "{line}");
    // A bad name is refused and changes nothing; a list not named stays.
    let (ok, _, stderr) = set(&["--role", "has space"]).await;
    assert!(!ok);
    assert!(stderr.contains("not a usable name for roles"), "{stderr}");
    let (ok, _, _) = set(&["--clear-roles"]).await;
    assert!(ok);
    let (_, listed, _) = operator(data.path(), &["user", "list"], None).await;
    let line = listed.lines().find(|l| l.contains("\tivy\t")).unwrap();
    assert!(line.ends_with("\t-\tops"), "{line}");
    let (ok, _, stderr) = set(&[]).await;
    assert!(!ok);
    assert!(stderr.contains("name a --role or --group"), "{stderr}");
}

#[tokio::test]
async fn operators_link_an_identity_of_a_configured_source_to_an_account() {
    let data = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    let config = etc.path().join("authz.toml");
    std::fs::write(
        &config,
        "[[remote_auth]]\nid = \"mc\"\ngrant_type = \"https://auth.test/mc\"\nparams = [\"u\"]\nurl = \"https://v.test/?u={u}\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let password = Some("a long password\n");
    for handle in ["ivan", "judy"] {
        let (ok, _, stderr) = operator(data.path(), &add_args(handle, &[]), password).await;
        assert!(ok, "{stderr}");
    }
    let link = |handle: &'static str, source: &'static str, subject: &'static str| {
        let args = [
            "--config",
            config,
            "user",
            "link",
            "--handle",
            handle,
            "--source",
            source,
            "--subject",
            subject,
        ];
        let data = data.path().to_owned();
        async move { operator(&data, &args, None).await }
    };
    let (ok, stdout, stderr) = link("ivan", "mc", "0001").await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("linked the mc identity"), "{stdout}");
    for (handle, source, subject, expected) in [
        ("judy", "mc", "0001", "already linked to an account"),
        ("ivan", "mc", "0002", "linked to another mc identity"),
        (
            "ivan",
            "corp",
            "0003",
            "no upstream, remote verifier or JWT-bearer issuer",
        ),
        ("nobody", "mc", "0004", "no user nobody"),
    ] {
        let (ok, _, stderr) = link(handle, source, subject).await;
        assert!(!ok, "{handle} {subject}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    // The refused second identity left no link behind: judy may have it.
    let (ok, _, stderr) = link("judy", "mc", "0002").await;
    assert!(ok, "{stderr}");
}
