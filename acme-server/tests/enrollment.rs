//! A full identity enrollment over HTTPS against the real acme-server and the real
//! authz-server: account, identity order, `wire-dpop-01` with a backend access token,
//! `wire-oidc-01` with an ID token, finalize, certificate download and inspection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::acme::{AuthorizationStatus, ChallengeStatus, Order, OrderStatus};
use serde_json::Value;
use x509_parser::prelude::*;

#[tokio::test]
async fn a_device_enrolls_end_to_end_and_gets_its_identity_certificate() {
    let env = Env::start().await;
    let dir = &env.client.directory;
    assert!(dir.new_nonce.ends_with("/acme/wire/new-nonce"));
    let meta = dir.meta.as_ref().unwrap();
    assert_eq!(
        meta.terms_of_service.as_deref(),
        Some("https://example.test/tos")
    );

    let e = env.begin().await;
    assert_eq!(e.order.status, OrderStatus::Pending);
    assert_eq!(e.dpop.kind, "wire-dpop-01");
    assert_eq!(
        e.dpop.target.as_deref().unwrap(),
        format!("{}/clients/{}/access-token", env.authz.base, e.device)
    );
    assert_eq!(e.oidc.kind, "wire-oidc-01");
    assert_eq!(e.oidc.target.as_deref(), Some(env.authz.base.as_str()));
    for token in [&e.dpop.token, &e.oidc.token] {
        assert!(proto::b64::decode(token, "token").unwrap().len() >= 16);
    }

    env.pass_dpop(&e).await;
    let order: Order = env.client.get(&e.account, &e.order_url).await;
    assert_eq!(order.status, OrderStatus::Pending, "one authorization left");
    env.pass_oidc(&e).await;
    let (device_authz, user_authz) = env.client.authzs(&e.account, &e.order).await;
    for authz in [&device_authz, &user_authz] {
        assert_eq!(authz.status, AuthorizationStatus::Valid);
        assert_eq!(authz.challenges[0].status, ChallengeStatus::Valid);
        assert!(authz.challenges[0].validated.is_some());
    }
    let order: Order = env.client.get(&e.account, &e.order_url).await;
    assert_eq!(order.status, OrderStatus::Ready);

    let credential = credential_key();
    let response = env
        .finalize(&e, &CsrSpec::for_device(&e.client_id).sign(&credential))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let order: Order = response.json().await.unwrap();
    assert_eq!(order.status, OrderStatus::Valid);
    let cert_url = order.certificate.unwrap();

    let response = env.client.post_as(&e.account, &cert_url, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "application/pem-certificate-chain"
    );
    let chain = response.text().await.unwrap();
    let pems: Vec<_> = Pem::iter_from_buffer(chain.as_bytes())
        .map(|p| p.unwrap())
        .collect();
    assert_eq!(pems.len(), 2, "leaf and intermediate");
    let leaf = pems[0].parse_x509().unwrap();
    let intermediate = pems[1].parse_x509().unwrap();
    leaf.verify_signature(Some(intermediate.public_key()))
        .unwrap();
    let root_pem = std::fs::read(&env.acme.as_ref().unwrap().ca_root).unwrap();
    let (_, root) = parse_x509_pem(&root_pem).unwrap();
    let root = root.parse_x509().unwrap();
    intermediate
        .verify_signature(Some(root.public_key()))
        .unwrap();

    assert_eq!(leaf.subject().to_string(), "O=wire.com, CN=Alice Smith");
    assert_eq!(
        &*leaf.public_key().subject_public_key.data,
        credential.public_key_raw()
    );
    let san = leaf.subject_alternative_name().unwrap().unwrap().value;
    let uris: Vec<String> = san
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::URI(u) => (*u).to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        uris,
        vec![
            format!("wireapp://%40{HANDLE}@{DOMAIN}"),
            e.client_id.to_uri().replacen('!', "%21", 1),
        ]
    );
    let ku = leaf.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.digital_signature() && !ku.value.key_cert_sign());
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!(!leaf.is_ca());
    assert!(leaf.tbs_certificate.raw_serial().len() >= 8);
    let ski = leaf.extensions().iter().any(|x| {
        matches!(
            x.parsed_extension(),
            ParsedExtension::SubjectKeyIdentifier(_)
        )
    });
    let aki = leaf.extensions().iter().any(|x| {
        matches!(
            x.parsed_extension(),
            ParsedExtension::AuthorityKeyIdentifier(_)
        )
    });
    assert!(ski && aki);
    let validity = leaf.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert_eq!(
        lifetime,
        90 * 86_400 + 300,
        "profile validity plus backdate"
    );

    let account: Value = env.client.get(&e.account, &e.account.kid).await;
    let orders: Value = env
        .client
        .get(&e.account, account["orders"].as_str().unwrap())
        .await;
    assert_eq!(orders["orders"], serde_json::json!([e.order_url]));
}

#[tokio::test]
async fn every_response_carries_a_nonce_and_the_index_link() {
    let env = Env::start().await;
    let response = env
        .client
        .http
        .get(&env.client.directory.new_nonce)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "cache-control"), "no-store");
    let first = header(&response, "replay-nonce");
    let response = env
        .client
        .http
        .get(&env.client.directory_url)
        .send()
        .await
        .unwrap();
    let second = header(&response, "replay-nonce");
    assert_ne!(first, second);
    assert_eq!(
        header(&response, "link"),
        format!("<{}>;rel=\"index\"", env.client.directory_url)
    );
    // A GET of a POST-only resource: 405 with a problem document and a nonce.
    let response = env
        .client
        .http
        .get(&env.client.directory.new_order)
        .send()
        .await
        .unwrap();
    assert_problem(response, 405, "malformed").await;
}

/// `id` with its JSON value's members in another order and spacing (the same identity).
fn respelled(id: &proto::acme::Identifier) -> proto::acme::Identifier {
    let members: serde_json::Map<String, Value> = serde_json::from_str(&id.value).unwrap();
    let reversed: Vec<String> = members
        .iter()
        .rev()
        .map(|(name, value)| format!("{}: {value}", Value::from(name.as_str())))
        .collect();
    let value = format!("{{ {} }}", reversed.join(", "));
    assert_ne!(value, id.value);
    proto::acme::Identifier {
        kind: id.kind.clone(),
        value,
    }
}

#[tokio::test]
async fn a_device_renews_after_a_failed_renewal_of_the_same_certificate() {
    let env = Env::start().await;
    let e = env.ready().await;
    let response = env
        .finalize(
            &e,
            &CsrSpec::for_device(&e.client_id).sign(&credential_key()),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let order: Order = response.json().await.unwrap();
    let chain = env
        .client
        .post_as(&e.account, &order.certificate.unwrap(), None)
        .await
        .text()
        .await
        .unwrap();
    let (_, leaf) = parse_x509_pem(chain.as_bytes()).unwrap();
    let replaces = cert_id(&leaf.contents);
    // The renewal names the same identity, its identifier values spelled differently.
    let renewal = serde_json::json!({
        "identifiers": identifiers(&e.client_id).iter().map(respelled).collect::<Vec<_>>(),
        "replaces": replaces,
    });
    let new_order = env.client.directory.new_order.clone();

    let response = env
        .client
        .post_as(&e.account, &new_order, Some(&renewal))
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let failed_url = header(&response, "location");
    let failed: Order = response.json().await.unwrap();
    let (device_authz, _) = env.client.authzs(&e.account, &failed).await;
    let response = env
        .client
        .answer(
            &e.account,
            &device_authz.challenges[0].url,
            serde_json::json!({"access_token": "junk"}),
        )
        .await;
    assert_problem(response, 400, "incorrectResponse").await;
    let failed: Order = env.client.get(&e.account, &failed_url).await;
    assert_eq!(failed.status, OrderStatus::Invalid);

    let response = env
        .client
        .post_as(&e.account, &new_order, Some(&renewal))
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let renewed: Order = response.json().await.unwrap();
    assert_eq!(renewed.replaces.as_deref(), Some(replaces.as_str()));
    assert_eq!(renewed.status, OrderStatus::Pending);
}
