//! The operator's visa commands on the real `authz-server` binary: `user visa add` (a visa
//! breaking its type's rules refused before anything is stored), `user visa list`, `user visa
//! remove` — and the running server releasing the asserted visa, signed by its key, in the
//! Passport of a client registered with the `ga4gh_passport_v1` scope.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use proto::visa::{self, TrustedIssuer};

async fn operator(data: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    operator_command(env!("CARGO_BIN_EXE_authz-server"), data, args, stdin).await
}

const GRANT: [&str; 12] = [
    "--type",
    "ControlledAccessGrants",
    "--value",
    "https://datasets.wire.example/DS-1",
    "--source",
    "https://dac.wire.example/DAC-1",
    "--by",
    "dac",
    "--conditions",
    r#"[[{"type":"AffiliationAndRole","value":"const:faculty@uni.example"}]]"#,
    "--valid-for",
    "86400",
];

#[tokio::test]
async fn operators_add_list_and_remove_visas_and_the_server_releases_them_signed() {
    let data = tempfile::tempdir().unwrap();
    let add_user = [
        "user", "add", "--handle", "vera", "--name", "Vera", "--domain", DOMAIN,
    ];
    let (ok, _, stderr) = operator(data.path(), &add_user, Some("a long password\n")).await;
    assert!(ok, "{stderr}");
    let add = |handle: &'static str, extra: Vec<&'static str>| {
        let mut args = vec!["user", "visa", "add", "--handle", handle];
        args.extend(extra);
        let data = data.path().to_owned();
        async move { operator(&data, &args, None).await }
    };

    // Refused before anything is stored: no `by` for a grant, a value that is no URL, JSON that
    // is not JSON, no expiry, an unknown user.
    let without_by: Vec<&str> = GRANT
        .iter()
        .copied()
        .filter(|a| *a != "--by" && *a != "dac")
        .collect();
    for (args, why) in [
        (without_by, "needs `by`"),
        (
            [&GRANT[..2], &["--value", "DS-1"], &GRANT[4..]].concat(),
            "must be a URL",
        ),
        (
            [&GRANT[..8], &["--conditions", "[[{"], &GRANT[10..]].concat(),
            "--conditions is not JSON",
        ),
        (GRANT[..10].to_vec(), "--expires-at"),
    ] {
        let (ok, _, stderr) = add("vera", args).await;
        assert!(!ok);
        assert!(stderr.contains(why), "{why}: {stderr}");
    }
    let (ok, _, stderr) = add("nobody", GRANT.to_vec()).await;
    assert!(!ok);
    assert!(stderr.contains("no user with handle nobody"), "{stderr}");
    let (_, listed, _) = operator(
        data.path(),
        &["user", "visa", "list", "--handle", "vera"],
        None,
    )
    .await;
    assert!(listed.is_empty(), "{listed}");

    // Two added, one removed.
    let (ok, first, stderr) = add("vera", GRANT.to_vec()).await;
    assert!(ok, "{stderr}");
    let first = first.split_whitespace().nth(2).unwrap().to_owned();
    let (ok, _, stderr) = add("vera", GRANT.to_vec()).await;
    assert!(ok, "{stderr}");
    let (ok, _, _) = operator(
        data.path(),
        &["user", "visa", "remove", "--handle", "vera", "--id", &first],
        None,
    )
    .await;
    assert!(ok);
    let (ok, _, stderr) = operator(
        data.path(),
        &["user", "visa", "remove", "--handle", "vera", "--id", &first],
        None,
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("has no visa"), "{stderr}");
    let (_, listed, _) = operator(
        data.path(),
        &["user", "visa", "list", "--handle", "vera"],
        None,
    )
    .await;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(
        fields[1..5],
        [
            "ControlledAccessGrants",
            "https://datasets.wire.example/DS-1",
            "https://dac.wire.example/DAC-1",
            "dac"
        ]
    );

    // The running server releases it to a client registered with the scope.
    let (ok, _, stderr) = operator(
        data.path(),
        &[
            "client",
            "add",
            "--id",
            "dam",
            "--redirect-uri",
            REDIRECT_URI,
            "--scope",
            "openid ga4gh_passport_v1",
        ],
        None,
    )
    .await;
    assert!(ok, "{stderr}");
    let (child, url) = spawn_dev_server(
        env!("CARGO_BIN_EXE_authz-server"),
        data.path(),
        "127.0.0.1:0",
    )
    .await;
    let h = Harness::attach(url, data.path());
    let (_, info) = h
        .claims_of_login("dam", "openid ga4gh_passport_v1", "vera", "a long password")
        .await;
    let passport = visa::passport_visas(&info).unwrap();
    assert_eq!(passport.len(), 1, "{info:?}");
    let trusted = [TrustedIssuer {
        issuer: h.base.clone(),
        jku: h.url("/jwks"),
        keys: proto::jwk::JwkSet::from_json(&h.get_json("/jwks").await)
            .unwrap()
            .keys,
    }];
    let verified = visa::verify_visa(passport[0], &trusted, h.now(), 60).unwrap();
    assert_eq!(
        verified.claims.visa.value,
        "https://datasets.wire.example/DS-1"
    );
    assert!(verified.claims.visa.has_conditions());
    assert_eq!(verified.claims.sub, info["sub"].as_str().unwrap());
    drop(h);
    stop(child).await;
}
