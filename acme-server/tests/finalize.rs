//! Finalize: only `ready` orders, and only CSRs that name exactly the order's identity with a
//! key that is no account's; each refusal is `badCSR` and leaves the order `ready`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proto::acme::{Order, OrderStatus};

#[tokio::test]
async fn finalize_before_ready_is_order_not_ready() {
    let env = Env::start().await;
    let e = env.begin().await;
    let der = CsrSpec::for_device(&e.client_id).sign(&credential_key());
    assert_problem(env.finalize(&e, &der).await, 403, "orderNotReady").await;
    env.pass_dpop(&e).await;
    assert_problem(env.finalize(&e, &der).await, 403, "orderNotReady").await;
}

#[tokio::test]
async fn csrs_that_do_not_name_exactly_the_identity_are_bad() {
    let env = Env::start().await;
    let e = env.ready().await;
    let good = CsrSpec::for_device(&e.client_id);
    let key = credential_key();

    let mut cases: Vec<(&str, CsrSpec)> = Vec::new();
    let mut extra_uri = CsrSpec::for_device(&e.client_id);
    extra_uri.uris.push("wireapp://%40bob@wire.com".into());
    cases.push(("an extra SAN", extra_uri));
    let mut dns = CsrSpec::for_device(&e.client_id);
    dns.dns.push("alice.wire.com".into());
    cases.push(("a DNS SAN", dns));
    let mut one_uri = CsrSpec::for_device(&e.client_id);
    one_uri.uris.pop();
    cases.push(("a missing handle", one_uri));
    let mut no_name = CsrSpec::for_device(&e.client_id);
    no_name.display_name = None;
    cases.push(("no display name", no_name));
    let mut other_name = CsrSpec::for_device(&e.client_id);
    other_name.display_name = Some("Mallory".into());
    cases.push(("another display name", other_name));
    let mut wrong_o = CsrSpec::for_device(&e.client_id);
    wrong_o.organization = Some("evil.com".into());
    cases.push(("a wrong O", wrong_o));
    let mut other_device = CsrSpec::for_device(&e.client_id);
    other_device.uris[0] = other_device.uris[0].replace('!', "!0");
    cases.push(("another device", other_device));

    for (what, spec) in &cases {
        let response = env.finalize(&e, &spec.sign(&key)).await;
        let problem = assert_problem(response, 400, "badCSR").await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{what}");
    }

    // The account key as the credential key.
    let account_key = rcgen::KeyPair::try_from(e.account.key.pkcs8_der().expose()).unwrap();
    let response = env.finalize(&e, &good.sign(&account_key)).await;
    let problem = assert_problem(response, 400, "badCSR").await;
    assert!(problem["detail"].as_str().unwrap().contains("account key"));

    // A corrupted signature.
    let mut der = good.sign(&key);
    let last = der.len() - 1;
    der[last] ^= 1;
    assert_problem(env.finalize(&e, &der).await, 400, "badCSR").await;

    let order: Order = env.client.get(&e.account, &e.order_url).await;
    assert_eq!(order.status, OrderStatus::Ready, "refusals change nothing");

    // `%21` in the client-id URI is what Wire certificates carry; it is accepted.
    let mut encoded = CsrSpec::for_device(&e.client_id);
    encoded.uris[0] = encoded.uris[0].replacen('!', "%21", 1);
    let response = env.finalize(&e, &encoded.sign(&key)).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let response = env.finalize(&e, &good.sign(&key)).await;
    assert_problem(response, 403, "orderNotReady").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_finalizes_issue_exactly_once() {
    use proto::acme_jws::{KeyId, sign_request};
    let env = Env::start().await;
    let e = env.ready().await;
    let payload = finalize_payload(&CsrSpec::for_device(&e.client_id).sign(&credential_key()));
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let nonce = env.client.fresh_nonce().await;
        bodies.push(
            sign_request(
                &e.account.key,
                KeyId::Kid(&e.account.kid),
                &nonce,
                &e.order.finalize,
                Some(&payload),
            )
            .unwrap(),
        );
    }
    let responses: Vec<u16> = post_all(&env.client, &e.order.finalize, bodies)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let ok = responses.iter().filter(|s| **s == 200).count();
    let not_ready = responses.iter().filter(|s| **s == 403).count();
    assert_eq!((ok, not_ready), (1, 3), "{responses:?}");
}
