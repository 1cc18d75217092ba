//! Standard (dns/ip) orders over HTTPS against the real server, with a small http-01 responder
//! played by the test: issuance, strict CSR names, revocation by account and by certificate key
//! with the CRL, key rollover, wildcard and IP challenge sets, failed validations, authorization
//! deactivation and the paginated orders list.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::standard::Fixture;
use common::{Account, assert_problem, cert_id, header, post_all};
use proto::acme::{Authorization, Challenge, ChallengeStatus, Order, OrderStatus};
use proto::acme_jws::{KeyId, sign_request};
use proto::clock::SystemClock;
use proto::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

fn serial_of(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.raw_serial_as_string().replace(':', "")
}

fn revoke_payload(der: &[u8], reason: Option<u8>) -> Value {
    let mut p = json!({ "certificate": proto::b64::encode(der) });
    if let Some(r) = reason {
        p["reason"] = json!(r);
    }
    p
}

#[tokio::test]
async fn a_dns_certificate_is_issued_and_names_exactly_the_order() {
    let f = Fixture::start().await;
    let account = f.client.new_account().await;
    let (_, leaf, _) = f
        .issue(&account, &["a.example.test", "b.example.test"])
        .await;
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let names: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        names,
        vec!["DNSName(a.example.test)", "DNSName(b.example.test)"]
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    assert!(cert.extensions().iter().any(|e| matches!(
        e.parsed_extension(),
        x509_parser::extensions::ParsedExtension::CRLDistributionPoints(_)
    )));

    // A CSR naming more (or fewer) than the order is refused.
    let (_, order) = f.order(&account, &[("dns", "c.example.test")]).await;
    f.validate(&account, &order).await;
    for names in [
        &["c.example.test", "d.example.test"][..],
        &["d.example.test"][..],
    ] {
        let (csr, _) = Fixture::csr(names);
        let response = f
            .client
            .post_as(
                &account,
                &order.finalize,
                Some(&common::finalize_payload(&csr)),
            )
            .await;
        assert_problem(response, 400, "badCSR").await;
    }
}

#[tokio::test]
async fn revocation_by_owner_or_certificate_key_only_and_the_crl_lists_it() {
    let f = Fixture::start().await;
    let owner = f.client.new_account().await;
    let stranger = f.client.new_account().await;
    let revoke_url = f.client.directory.revoke_cert.clone().unwrap();
    let (_, leaf, leaf_key) = f.issue(&owner, &["r.example.test"]).await;

    let response = f
        .client
        .post_as(&stranger, &revoke_url, Some(&revoke_payload(&leaf, None)))
        .await;
    assert_problem(response, 403, "unauthorized").await;
    let response = f
        .client
        .post_as(&owner, &revoke_url, Some(&revoke_payload(&leaf, Some(6))))
        .await;
    assert_problem(response, 400, "badRevocationReason").await;
    assert!(!f.crl_serials("crl/names").await.contains(&serial_of(&leaf)));

    // Signed by the certificate's own key, embedded as jwk.
    let cert_key = SigningKey::from_pkcs8_der(Algorithm::Es256, &leaf_key.serialize_der()).unwrap();
    let nonce = f.client.fresh_nonce().await;
    let body = sign_request(
        &cert_key,
        KeyId::Jwk,
        &nonce,
        &revoke_url,
        Some(&revoke_payload(&leaf, Some(1))),
    )
    .unwrap();
    let response = f.client.send(&revoke_url, body).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert!(f.crl_serials("crl/names").await.contains(&serial_of(&leaf)));
    // The identity CA did not sign it and does not list it.
    assert!(!f.crl_serials("crl").await.contains(&serial_of(&leaf)));

    let response = f
        .client
        .post_as(&owner, &revoke_url, Some(&revoke_payload(&leaf, None)))
        .await;
    assert_problem(response, 400, "alreadyRevoked").await;
}

#[tokio::test]
async fn key_rollover_moves_the_account_and_refuses_a_key_in_use() {
    let f = Fixture::start().await;
    let account = f.client.new_account().await;
    let other = f.client.new_account().await;
    let url = f.client.directory.key_change.clone().unwrap();
    let inner = |new: &SigningKey, old: &SigningKey| {
        let payload = json!({"account": account.kid, "oldKey": old.public_jwk().to_json()});
        let signed = sign_request(new, KeyId::Jwk, "unused", &url, Some(&payload)).unwrap();
        serde_json::from_str::<Value>(&signed).unwrap()
    };

    // A key another account uses: 409 naming that account.
    let response = f
        .client
        .post_as(&account, &url, Some(&inner(&other.key, &account.key)))
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(header(&response, "location"), other.kid);

    // oldKey must be the current key.
    let new_key = SigningKey::generate(Algorithm::Es256).unwrap();
    let response = f
        .client
        .post_as(&account, &url, Some(&inner(&new_key, &new_key)))
        .await;
    assert_problem(response, 400, "malformed").await;

    let response = f
        .client
        .post_as(&account, &url, Some(&inner(&new_key, &account.key)))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    // The old key (Ed25519) no longer speaks for the account (now ES256); the new one does.
    let response = f.client.post_as(&account, &account.kid, None).await;
    assert_problem(response, 400, "badSignatureAlgorithm").await;
    let rolled = Account {
        key: new_key,
        kid: account.kid.clone(),
    };
    let response = f.client.post_as(&rolled, &rolled.kid, None).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn challenge_sets_follow_the_identifier_and_failures_are_recorded() {
    let f = Fixture::start().await;
    let account = f.client.new_account().await;
    let kinds = |a: &Authorization| {
        a.challenges
            .iter()
            .map(|c| c.kind.clone())
            .collect::<Vec<_>>()
    };

    let (_, order) = f.order(&account, &[("dns", "*.w.example.test")]).await;
    let authz: Authorization = f.client.get(&account, &order.authorizations[0]).await;
    assert_eq!(authz.wildcard, Some(true));
    assert_eq!(authz.identifier.value, "w.example.test");
    assert_eq!(kinds(&authz), vec!["dns-01"], "no http-01 for a wildcard");

    let (_, order) = f.order(&account, &[("ip", "127.0.0.1")]).await;
    let authz: Authorization = f.client.get(&account, &order.authorizations[0]).await;
    assert_eq!(kinds(&authz), vec!["http-01", "tls-alpn-01"]);

    // Nothing served for this token: unauthorized (404), challenge and order invalid.
    let (order_url, order) = f.order(&account, &[("dns", "x.example.test")]).await;
    let authz: Authorization = f.client.get(&account, &order.authorizations[0]).await;
    let http = authz
        .challenges
        .iter()
        .find(|c| c.kind == "http-01")
        .unwrap();
    let response = f.client.answer(&account, &http.url, json!({})).await;
    let challenge: Challenge = response.json().await.unwrap();
    assert_eq!(challenge.status, ChallengeStatus::Invalid);
    assert_eq!(
        challenge.error.unwrap().kind,
        "urn:ietf:params:acme:error:unauthorized"
    );
    let order: Order = f.client.get(&account, &order_url).await;
    assert_eq!(order.status, OrderStatus::Invalid);

    // The wrong key authorization: incorrectResponse.
    let (_, order) = f.order(&account, &[("dns", "y.example.test")]).await;
    let authz: Authorization = f.client.get(&account, &order.authorizations[0]).await;
    let http = authz
        .challenges
        .iter()
        .find(|c| c.kind == "http-01")
        .unwrap();
    f.served
        .lock()
        .unwrap()
        .insert(http.token.clone(), "wrong".into());
    let challenge: Challenge = f
        .client
        .answer(&account, &http.url, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        challenge.error.unwrap().kind,
        "urn:ietf:params:acme:error:incorrectResponse"
    );

    // Strict hygiene: the answer of a standard challenge is {}.
    let (_, order) = f.order(&account, &[("dns", "z.example.test")]).await;
    let authz: Authorization = f.client.get(&account, &order.authorizations[0]).await;
    let response = f
        .client
        .answer(
            &account,
            &authz.challenges[0].url,
            json!({"keyAuthorization": "x"}),
        )
        .await;
    assert_problem(response, 400, "malformed").await;

    // Bad identifiers.
    for (kind, value, problem) in [
        ("dns", "bad_name.test", "rejectedIdentifier"),
        ("ip", "0:0::1", "malformed"),
        ("email", "a@b.test", "unsupportedIdentifier"),
    ] {
        let response = f
            .client
            .post_as(
                &account,
                &f.client.directory.new_order.clone(),
                Some(&json!({"identifiers": [{"type": kind, "value": value}]})),
            )
            .await;
        let body = assert_problem(response, 400, problem).await;
        assert_eq!(body["subproblems"][0]["identifier"]["value"], value);
    }
}

#[tokio::test]
async fn deactivating_an_authorization_invalidates_its_order() {
    let f = Fixture::start().await;
    let account = f.client.new_account().await;
    let (order_url, order) = f.order(&account, &[("dns", "d.example.test")]).await;
    let response = f
        .client
        .post_as(
            &account,
            &order.authorizations[0],
            Some(&json!({"status": "deactivated"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let authz: Authorization = response.json().await.unwrap();
    assert_eq!(authz.status, proto::acme::AuthorizationStatus::Deactivated);
    let order: Order = f.client.get(&account, &order_url).await;
    assert_eq!(order.status, OrderStatus::Invalid);
    let response = f
        .client
        .post_as(
            &account,
            &order.authorizations[0],
            Some(&json!({"status": "deactivated"})),
        )
        .await;
    assert_problem(response, 400, "malformed").await;
}

#[tokio::test]
async fn the_orders_list_is_paginated() {
    let f = Fixture::start().await;
    let account = f.client.new_account().await;
    for i in 0..51 {
        f.order(&account, &[("dns", &format!("p{i}.example.test"))])
            .await;
    }
    let list = format!("{}/orders", account.kid);
    let response = f.client.post_as(&account, &list, None).await;
    let next = header(&response, "link");
    assert!(next.ends_with("?page=1>;rel=\"next\""), "{next}");
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["orders"].as_array().unwrap().len(), 50);
    let next_url = next
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let response = f.client.post_as(&account, &next_url, None).await;
    assert!(
        response
            .headers()
            .get_all("link")
            .iter()
            .all(|l| !l.to_str().unwrap().contains("next"))
    );
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["orders"].as_array().unwrap().len(), 1);
}

async fn replace(f: &Fixture, account: &Account, id: &str) -> reqwest::Response {
    replace_with(f, account, id, &["ari.example.test"]).await
}

/// newOrder for `names` replacing the certificate `id`.
async fn replace_with(
    f: &Fixture,
    account: &Account,
    id: &str,
    names: &[&str],
) -> reqwest::Response {
    let identifiers: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    let body = json!({"identifiers": identifiers, "replaces": id});
    let url = f.client.directory.new_order.clone();
    f.client.post_as(account, &url, Some(&body)).await
}

/// Makes a replacing order fail: deactivates its authorization of `name` (a fresh one, since
/// the name was never validated), which invalidates the order (RFC 8555 §7.5.2).
async fn fail(f: &Fixture, account: &Account, order_url: &str, name: &str) {
    let order: Order = f.client.get(account, order_url).await;
    for url in &order.authorizations {
        let authz: Authorization = f.client.get(account, url).await;
        if authz.identifier.value == name {
            let deactivate = json!({"status": "deactivated"});
            let response = f.client.post_as(account, url, Some(&deactivate)).await;
            assert_eq!(response.status(), 200);
        }
    }
    let order: Order = f.client.get(account, order_url).await;
    assert_eq!(order.status, OrderStatus::Invalid);
}

#[tokio::test]
async fn a_failed_replacement_releases_the_certificate_for_the_next_one() {
    let f = Fixture::start().await;
    let owner = f.client.new_account().await;
    let (_, leaf, _) = f.issue(&owner, &["ari.example.test"]).await;
    let id = cert_id(&leaf);
    let renewal = ["ari.example.test", "new.example.test"];

    let response = replace_with(&f, &owner, &id, &renewal).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let first = header(&response, "location");
    assert_problem(
        replace_with(&f, &owner, &id, &renewal).await,
        409,
        "alreadyReplaced",
    )
    .await;

    // The first replacement goes invalid: it no longer holds the certificate (RFC 9773 §5).
    fail(&f, &owner, &first, "new.example.test").await;
    let response = replace_with(&f, &owner, &id, &renewal).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let second: Order = response.json().await.unwrap();
    assert_eq!(second.replaces.as_deref(), Some(id.as_str()));
    assert_eq!(second.status, OrderStatus::Pending);
    assert_problem(replace(&f, &owner, &id).await, 409, "alreadyReplaced").await;

    // An order sharing no identifier with the certificate replaces nothing.
    let body = assert_problem(
        replace_with(&f, &owner, &id, &["other.example.test"]).await,
        400,
        "malformed",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("identifier"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replacements_leave_exactly_one_holder_at_a_time() {
    let f = Fixture::start_with(|c| c.rate_limits.new_orders_per_account.per_minute = 0).await;
    let owner = f.client.new_account().await;
    let (_, leaf, _) = f.issue(&owner, &["ari.example.test"]).await;
    let id = cert_id(&leaf);
    let renewal = ["ari.example.test", "new.example.test"];
    let url = f.client.directory.new_order.clone();
    let payload = json!({
        "identifiers": renewal.map(|n| json!({"type": "dns", "value": n})),
        "replaces": id,
    });
    for round in 0..2 {
        let mut bodies = Vec::new();
        for _ in 0..100 {
            let nonce = f.client.fresh_nonce().await;
            let key_id = KeyId::Kid(&owner.kid);
            bodies.push(sign_request(&owner.key, key_id, &nonce, &url, Some(&payload)).unwrap());
        }
        let mut holders = Vec::new();
        let mut refused = 0;
        for response in post_all(&f.client, &url, bodies).await {
            match response.status().as_u16() {
                201 => holders.push(header(&response, "location")),
                409 => refused += 1,
                other => panic!("round {round}: {other} {:?}", response.text().await),
            }
        }
        assert_eq!((holders.len(), refused), (1, 99), "round {round}");
        // Only the holder's failure frees the certificate for the next round.
        assert_problem(
            replace_with(&f, &owner, &id, &renewal).await,
            409,
            "alreadyReplaced",
        )
        .await;
        fail(&f, &owner, &holders[0], "new.example.test").await;
    }
}

#[tokio::test]
async fn renewal_information_and_replacement() {
    let f = Fixture::start().await;
    let owner = f.client.new_account().await;
    let stranger = f.client.new_account().await;
    let (_, leaf, _) = f.issue(&owner, &["ari.example.test"]).await;
    let id = cert_id(&leaf);
    let info_url = format!("{}/{id}", f.client.directory.renewal_info.clone().unwrap());

    let response = f.client.http.get(&info_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "retry-after"), "21600");
    let info: proto::acme::RenewalInfo = response.json().await.unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let start = proto::rfc3339::parse(&info.suggested_window.start).unwrap();
    let end = proto::rfc3339::parse(&info.suggested_window.end).unwrap();
    assert!(cert.validity().not_before.timestamp() < start && start < end);
    assert!(end < cert.validity().not_after.timestamp());

    assert_problem(replace(&f, &stranger, &id).await, 403, "unauthorized").await;
    let response = replace(&f, &owner, &id).await;
    assert_eq!(response.status(), 201);
    let order: Order = response.json().await.unwrap();
    assert_eq!(order.replaces.as_deref(), Some(id.as_str()));
    assert_problem(replace(&f, &owner, &id).await, 409, "alreadyReplaced").await;

    // A revoked certificate should be renewed now.
    let revoke_url = f.client.directory.revoke_cert.clone().unwrap();
    let response = f
        .client
        .post_as(&owner, &revoke_url, Some(&revoke_payload(&leaf, None)))
        .await;
    assert_eq!(response.status(), 200);
    let info: proto::acme::RenewalInfo = f
        .client
        .http
        .get(&info_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let end = proto::rfc3339::parse(&info.suggested_window.end).unwrap();
    assert!(end < proto::clock::Clock::now(&SystemClock));

    let unknown = format!(
        "{}/{}",
        f.client.directory.renewal_info.clone().unwrap(),
        "AAAA.AAAA"
    );
    assert_problem(
        f.client.http.get(&unknown).send().await.unwrap(),
        404,
        "malformed",
    )
    .await;
}

#[tokio::test]
async fn profiles_choose_validity_and_usage() {
    let f = Fixture::start().await;
    let profiles = &f.client.directory.meta.as_ref().unwrap().profiles;
    assert!(
        ["tls", "shortlived", "wire-identity"]
            .iter()
            .all(|p| profiles.contains_key(*p))
    );
    let account = f.client.new_account().await;
    let new_order = f.client.directory.new_order.clone();
    let ask = |profile: &str| json!({"identifiers": [{"type": "dns", "value": "p.example.test"}], "profile": profile});
    for bad in ["nope", "wire-identity"] {
        let response = f
            .client
            .post_as(&account, &new_order, Some(&ask(bad)))
            .await;
        assert_problem(response, 400, "invalidProfile").await;
    }
    let response = f
        .client
        .post_as(&account, &new_order, Some(&ask("shortlived")))
        .await;
    assert_eq!(response.status(), 201);
    let order_url = header(&response, "location");
    let order: Order = response.json().await.unwrap();
    assert_eq!(order.profile.as_deref(), Some("shortlived"));
    let (order, _) = f
        .finalize(&account, &order_url, &order, &["p.example.test"])
        .await;
    let (chain, _) = f.chain(&account, &order.certificate.unwrap()).await;
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let v = cert.validity();
    assert_eq!(
        v.not_after.timestamp() - v.not_before.timestamp(),
        6 * 86_400 + 300
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth);
}

#[tokio::test]
async fn valid_authorizations_are_reused_by_later_orders() {
    let f = Fixture::start().await;
    let account = f.client.new_account().await;
    let (_, first) = f.order(&account, &[("dns", "reuse.example.test")]).await;
    f.validate(&account, &first).await;
    let (_, second) = f
        .order(
            &account,
            &[("dns", "reuse.example.test"), ("dns", "new.example.test")],
        )
        .await;
    assert_eq!(second.status, OrderStatus::Pending);
    assert_eq!(second.authorizations[0], first.authorizations[0]);
    assert_ne!(second.authorizations[1], first.authorizations[0]);
    let (_, third) = f.order(&account, &[("dns", "reuse.example.test")]).await;
    assert_eq!(third.status, OrderStatus::Ready, "nothing left to prove");
    // Another account proves the name itself.
    let other = f.client.new_account().await;
    let (_, theirs) = f.order(&other, &[("dns", "reuse.example.test")]).await;
    assert_eq!(theirs.status, OrderStatus::Pending);
    assert_ne!(theirs.authorizations[0], first.authorizations[0]);
}

#[tokio::test]
async fn alternate_chains_are_linked_from_the_certificate() {
    let alt_dir = tempfile::tempdir().unwrap();
    let alt_path = alt_dir.path().join("cross-signed.pem");
    let cross = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    std::fs::write(&alt_path, cross.pem()).unwrap();
    // The identity CA's alternate chain is not offered for a name certificate: each CA has its
    // own.
    let identity_alt = alt_dir.path().join("identity-cross-signed.pem");
    std::fs::write(&identity_alt, cross.pem()).unwrap();
    let f = Fixture::start_with(|c| {
        c.standard_orders.ca.alternate_chains = vec![alt_path.clone()];
        c.ca.alternate_chains = vec![identity_alt.clone(), identity_alt.clone()];
    })
    .await;
    let account = f.client.new_account().await;
    let (order_url, order) = f.order(&account, &[("dns", "alt.example.test")]).await;
    let (order, _) = f
        .finalize(&account, &order_url, &order, &["alt.example.test"])
        .await;
    let cert_url = order.certificate.unwrap();
    let response = f.client.post_as(&account, &cert_url, None).await;
    let links: Vec<String> = response
        .headers()
        .get_all("link")
        .iter()
        .map(|l| l.to_str().unwrap().to_owned())
        .collect();
    let alternate = format!("<{cert_url}/0>;rel=\"alternate\"");
    assert!(links.contains(&alternate), "{links:?}");
    let chain = response.text().await.unwrap();
    let (_, leaf) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    let leaf = leaf.contents;
    let response = f
        .client
        .post_as(&account, &format!("{cert_url}/0"), None)
        .await;
    assert_eq!(response.status(), 200);
    let links: Vec<String> = response
        .headers()
        .get_all("link")
        .iter()
        .map(|l| l.to_str().unwrap().to_owned())
        .collect();
    assert!(
        links.contains(&format!("<{cert_url}>;rel=\"alternate\"")),
        "{links:?}"
    );
    let alt_chain = response.text().await.unwrap();
    let (_, alt_leaf) = x509_parser::pem::parse_x509_pem(alt_chain.as_bytes()).unwrap();
    assert_eq!(alt_leaf.contents, leaf);
    assert!(alt_chain.ends_with(&cross.pem()));
    let response = f
        .client
        .post_as(&account, &format!("{cert_url}/1"), None)
        .await;
    assert_problem(response, 404, "malformed").await;
}

#[tokio::test]
async fn an_ip_address_certificate_is_validated_over_http_01() {
    let f = Fixture::start().await;
    let account = f.client.new_account().await;
    let (order_url, order) = f.order(&account, &[("ip", "127.0.0.1")]).await;
    let (order, _) = f
        .finalize(&account, &order_url, &order, &["127.0.0.1"])
        .await;
    let (chain, _) = f.chain(&account, &order.certificate.unwrap()).await;
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    assert!(matches!(
        san.general_names.as_slice(),
        [x509_parser::extensions::GeneralName::IPAddress([
            127, 0, 0, 1
        ])]
    ));
}

#[tokio::test]
async fn an_ipv6_address_is_validated_with_its_host_in_brackets() {
    let f = Fixture::start().await;
    f.also_on_ipv6().await;
    let account = f.client.new_account().await;
    let (order_url, order) = f.order(&account, &[("ip", "::1")]).await;
    let (order, _) = f.finalize(&account, &order_url, &order, &["::1"]).await;
    assert!(order.certificate.is_some());
    assert_eq!(f.hosts.lock().unwrap().as_slice(), ["[::1]"]);
}

#[tokio::test]
async fn rate_limits_answer_429_rate_limited_with_retry_after() {
    use server_kit::rate_limit::Rate;
    let f = Fixture::start_with(|c| {
        c.rate_limits.new_accounts_per_ip = Rate::new(1, 2);
        c.rate_limits.new_orders_per_account = Rate::new(1, 4);
        c.rate_limits.failed_validations_per_account = Rate::new(1, 2);
    })
    .await;

    // Accounts per IP: two pass, the third from 127.0.0.1 is refused; an existing account is
    // still returned (lookups do not count).
    let first = f.client.new_account().await;
    let second = f.client.new_account().await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let new_account = f.client.directory.new_account.clone();
    let tos = json!({"termsOfServiceAgreed": true});
    let response = f
        .client
        .post(&new_account, &key, KeyId::Jwk, Some(&tos))
        .await;
    assert_eq!(header(&response, "retry-after"), "60");
    assert_problem(response, 429, "rateLimited").await;
    let again = f
        .client
        .post(&new_account, &first.key, KeyId::Jwk, Some(&tos))
        .await;
    assert_eq!(again.status(), 200);

    // Failed validations per account: nothing is served, so http-01 fails twice; the third
    // answer is refused before any validation runs.
    let answer_http01 = |name: &'static str| {
        let f = &f;
        let first = &first;
        async move {
            let (_, order) = f.order(first, &[("dns", name)]).await;
            let authz: Authorization = f.client.get(first, &order.authorizations[0]).await;
            let http = authz
                .challenges
                .iter()
                .find(|c| c.kind == "http-01")
                .unwrap()
                .clone();
            f.client.answer(first, &http.url, json!({})).await
        }
    };
    for name in ["fail1.example.com", "fail2.example.com"] {
        let challenge: Challenge = answer_http01(name).await.json().await.unwrap();
        assert_eq!(challenge.status, ChallengeStatus::Invalid);
    }
    let refused = answer_http01("fail3.example.com").await;
    assert!(header(&refused, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_problem(refused, 429, "rateLimited").await;

    // Orders per account: three used, one left, then refused.
    let _fourth = f.order(&first, &[("dns", "fourth.example.com")]).await;
    let new_order = f.client.directory.new_order.clone();
    let response = f
        .client
        .post_as(
            &first,
            &new_order,
            Some(&json!({"identifiers": [{"type": "dns", "value": "fifth.example.com"}]})),
        )
        .await;
    assert!(header(&response, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_problem(response, 429, "rateLimited").await;

    // The other account has budgets of its own.
    let (_, order) = f.order(&second, &[("dns", "ok.example.com")]).await;
    f.validate(&second, &order).await;
}

/// An http-01 responder for the failed-validation race: every validation it receives is
/// counted and held, answered (wrongly) only once each of the `total` concurrent answers is
/// accounted for, as a validation held here (`seen`) or as a `rateLimited` refusal
/// (`refused`). Every validation the server lets run is thus still running when the last
/// answer is decided; no sleep is involved.
struct Gate {
    total: usize,
    seen: AtomicUsize,
    refused: AtomicUsize,
    open: tokio::sync::Notify,
}

impl Gate {
    fn is_open(&self) -> bool {
        self.seen.load(Ordering::SeqCst) + self.refused.load(Ordering::SeqCst) >= self.total
    }

    fn counted(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::SeqCst);
        if self.is_open() {
            self.open.notify_waiters();
        }
    }

    async fn wait(&self) {
        loop {
            let opened = self.open.notified();
            if self.is_open() {
                return;
            }
            opened.await;
        }
    }

    async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            let gate = self.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                gate.counted(&gate.seen);
                gate.wait().await;
                let wrong =
                    "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nwrong";
                let _ = stream.write_all(wrong.as_bytes()).await;
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_failing_validations_never_run_past_the_limit() {
    use server_kit::rate_limit::Rate;
    const TOTAL: usize = 120;
    const BURST: u32 = 20;
    for per_account in [true, false] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let gate = Arc::new(Gate {
            total: TOTAL,
            seen: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            open: tokio::sync::Notify::new(),
        });
        tokio::spawn(gate.clone().serve(listener));
        let f = Arc::new(
            Fixture::start_with(|c| {
                c.validation.http_port = port;
                c.validation.timeout = 60;
                let limit = Rate::new(1, BURST);
                if per_account {
                    c.rate_limits.failed_validations_per_account = limit;
                } else {
                    c.rate_limits.failed_validations_per_account = Rate::UNLIMITED;
                    c.rate_limits.failed_validations_per_identifier = limit;
                }
            })
            .await,
        );
        let account = Arc::new(f.client.new_account().await);
        // TOTAL pending http-01 challenges: of as many names (the account's limit binds), or
        // all of one name (the identifier's limit binds).
        let mut challenges = Vec::with_capacity(TOTAL);
        for i in 0..TOTAL {
            let name = if per_account {
                format!("race{i}.example.test")
            } else {
                "race.example.test".to_owned()
            };
            let (_, order) = f.order(&account, &[("dns", &name)]).await;
            let authz: Authorization = f.client.get(&account, &order.authorizations[0]).await;
            let http = authz.challenges.into_iter().find(|c| c.kind == "http-01");
            challenges.push(http.unwrap().url);
        }

        let answers: Vec<_> = challenges
            .into_iter()
            .map(|url| {
                let (f, account, gate) = (f.clone(), account.clone(), gate.clone());
                tokio::spawn(async move {
                    let response = f.client.answer(&account, &url, json!({})).await;
                    if response.status() == 429 {
                        gate.counted(&gate.refused);
                    }
                    response
                })
            })
            .collect();
        let mut limited = 0;
        let mut failed = 0;
        for answer in answers {
            let response = answer.await.unwrap();
            if response.status() == 429 {
                assert!(header(&response, "retry-after").parse::<u64>().unwrap() >= 1);
                assert_problem(response, 429, "rateLimited").await;
                limited += 1;
            } else {
                let challenge: Challenge = response.json().await.unwrap();
                assert_eq!(challenge.status, ChallengeStatus::Invalid);
                failed += 1;
            }
        }
        let ran = gate.seen.load(Ordering::SeqCst);
        let which = if per_account { "account" } else { "identifier" };
        eprintln!("per {which}: {ran} validations ran, {limited} refused with 429");
        assert!(ran <= BURST as usize, "per {which}: {ran} validations ran");
        assert_eq!(failed, ran, "per {which}");
        assert_eq!(limited, TOTAL - ran, "per {which}");
    }
}

#[tokio::test]
async fn pending_authorizations_are_capped_per_account() {
    let f = Fixture::start_with(|c| c.caps.pending_authorizations_per_account = 3).await;
    let account = f.client.new_account().await;
    let new_order = f.client.directory.new_order.clone();
    let order_for = |names: &[&str]| {
        let ids: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect();
        json!({ "identifiers": ids })
    };

    // Two pending, then an order that would make four is refused with the time until the
    // first pending one expires (the order lifetime, 3600 s by default).
    let (_, first) = f
        .order(
            &account,
            &[("dns", "a.example.com"), ("dns", "b.example.com")],
        )
        .await;
    let refused = f
        .client
        .post_as(
            &account,
            &new_order,
            Some(&order_for(&["c.example.com", "d.example.com"])),
        )
        .await;
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    let problem = assert_problem(refused, 429, "rateLimited").await;
    assert!(problem["detail"].as_str().unwrap().contains("at most 3"));

    // One more fits exactly.
    let (_, third) = f.order(&account, &[("dns", "c.example.com")]).await;

    // Validated and deactivated authorizations leave the count: two slots come back.
    f.validate(&account, &third).await;
    let response = f
        .client
        .post_as(
            &account,
            &first.authorizations[0],
            Some(&json!({"status": "deactivated"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    f.order(
        &account,
        &[("dns", "d.example.com"), ("dns", "e.example.com")],
    )
    .await;

    // Another account is not affected by this one's pending authorizations.
    let other = f.client.new_account().await;
    f.order(
        &other,
        &[("dns", "a.example.com"), ("dns", "b.example.com")],
    )
    .await;
}
