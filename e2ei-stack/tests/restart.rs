//! Both servers stopped and started again (same data directories, same ports) between order
//! creation and finalize: the device completes the enrollment with the same account, order and
//! login, its ACME client retrying the `badNonce` the restart causes by itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use client_sdk::acme::AcmeClient;
use client_sdk::authz::Authz;
use client_sdk::enroll::{answer, id_token_claims, identity_of, wire_dpop_proof};
use client_sdk::{Step, certificate};
use e2ei_stack::stack::{Options, Stack};
use proto::acme::{Authorization, Order, OrderStatus};
use proto::clock::{Clock, SystemClock};
use proto::jws::{Algorithm, SigningKey};
use serde_json::json;

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrollment_completes_across_a_restart_of_both_servers() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        authz_listen: free_port(),
        acme_listen: free_port(),
        ..Options::default()
    };
    let stack = Stack::start_with(dir.path(), options.clone())
        .await
        .unwrap();
    let config = stack.demo_config();
    let http = server_kit::tls::https_client(&config.tls_roots, config.step_timeout).unwrap();
    let authz = Authz::new(http.clone(), &config.authz_url);
    let tokens = authz.login(&config, None, Step::Login).await.unwrap();
    let device = authz.register_device(&tokens.access_token).await.unwrap();
    let identity = identity_of(&tokens.id_token, &device).unwrap();
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let mut acme = AcmeClient::connect(http.clone(), &config.acme_directory, key.clone(), 3)
        .await
        .unwrap();
    let account = acme.account().await.unwrap();
    let (order_url, order) = acme.new_order(&identity.acme_identifiers()).await.unwrap();

    stack.shutdown().await.unwrap();
    let stack = Stack::start_with(dir.path(), options).await.unwrap();

    // Same key, same account; the saved nonce is stale and is retried by the client.
    assert_eq!(acme.account().await.unwrap(), account);
    let mut challenges = Vec::new();
    for url in &order.authorizations {
        let a: Authorization = acme.get(Step::Authorizations, url).await.unwrap();
        challenges.extend(a.challenges);
    }
    let dpop = challenges
        .iter()
        .find(|c| c.kind == "wire-dpop-01")
        .unwrap();
    let oidc = challenges
        .iter()
        .find(|c| c.kind == "wire-oidc-01")
        .unwrap();
    let nonce = authz
        .backend_nonce(&tokens.access_token, &device.id)
        .await
        .unwrap();
    let proof = wire_dpop_proof(&key, &identity, dpop, &nonce, SystemClock.now()).unwrap();
    let token = authz
        .access_token(&tokens.access_token, &device.id, &proof)
        .await
        .unwrap();
    answer(
        &acme,
        Step::DpopChallenge,
        dpop,
        json!({ "access_token": token }),
    )
    .await
    .unwrap();
    let id_token = authz
        .login(&config, Some(&id_token_claims(oidc, &key)), Step::IdToken)
        .await
        .unwrap()
        .id_token
        .unwrap();
    answer(
        &acme,
        Step::OidcChallenge,
        oidc,
        json!({ "id_token": id_token }),
    )
    .await
    .unwrap();

    let credential = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let csr = certificate::csr(&identity, &credential).unwrap();
    let order: Order = acme
        .finalize(&order_url, &order, &csr, config.step_timeout)
        .await
        .unwrap();
    assert_eq!(order.status, OrderStatus::Valid);
    let chain = acme.certificate(&order.certificate.unwrap()).await.unwrap();
    let root = std::fs::read_to_string(&stack.acme.ca_root).unwrap();
    let info = certificate::verify(
        &chain,
        &root,
        &identity,
        credential.public_key_raw(),
        SystemClock.now(),
        config.clock_skew,
    )
    .unwrap();
    assert_eq!(info.subject, "O=wire.example, CN=Alice Smith");
    // A device whose clock is 400 s behind the servers' (notBefore is backdated 300 s): within
    // a tolerated skew of 300 s the chain is valid; with 60 s the error names the clocks.
    let behind = SystemClock.now() - 400;
    let verify = |skew| {
        certificate::verify(
            &chain,
            &root,
            &identity,
            credential.public_key_raw(),
            behind,
            skew,
        )
    };
    assert!(verify(300).is_ok());
    let refused = verify(60).unwrap_err();
    assert!(
        refused.contains("not valid yet") && refused.contains("check the clocks"),
        "{refused}"
    );
    stack.shutdown().await.unwrap();
}
