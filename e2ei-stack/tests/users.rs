//! Several devices and users: two devices of one user, two users enrolling at once, one user
//! unable to complete an order for another's identity, and renewal keeping device and account.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use client_sdk::acme::AcmeClient;
use client_sdk::authz::Authz;
use client_sdk::{Cause, Enrollment, Previous, Step};
use e2ei_stack::stack::{DOMAIN, ExtraUser, Options, Stack};
use proto::acme::{Authorization, Identifier};
use proto::jws::{Algorithm, SigningKey};
use proto::secret::SecretString;
use proto::wire_id::{ClientId, DeviceIdentifier, HandleUri, UserIdentifier};
use serde_json::json;

fn bob() -> ExtraUser {
    ExtraUser {
        handle: "bob_wire".into(),
        name: "Bob Builder".into(),
        password: SecretString::new("bob's long password"),
    }
}

async fn stack_with_bob(dir: &std::path::Path) -> Stack {
    Stack::start_with(
        dir,
        Options {
            users: vec![bob()],
            ..Options::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn two_devices_of_one_user_get_distinct_certificates_and_renewal_keeps_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(dir.path()).await.unwrap();
    let first = Enrollment::new(stack.demo_config()).run().await.unwrap();
    let second = Enrollment::new(stack.demo_config()).run().await.unwrap();
    assert_ne!(first.device.id, second.device.id);
    assert_ne!(first.account_url, second.account_url);
    assert_eq!(first.identity.handle(), second.identity.handle());
    assert_ne!(first.certificate.uris, second.certificate.uris);

    let renewed = Enrollment::new(stack.demo_config())
        .renewing(Previous {
            account_key: first.account_key.clone(),
            algorithm: first.algorithm,
            device: first.device.clone(),
        })
        .run()
        .await
        .unwrap();
    assert_eq!(renewed.device, first.device);
    assert_eq!(renewed.account_url, first.account_url);
    assert_eq!(renewed.certificate.uris, first.certificate.uris);
    assert_ne!(renewed.certificate.serial, first.certificate.serial);
    assert_ne!(
        renewed.credential_key.expose(),
        first.credential_key.expose()
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_enroll_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_with_bob(dir.path()).await;
    let alice = Enrollment::new(stack.demo_config());
    let bob = Enrollment::new(stack.sdk_config("bob_wire", bob().password));
    let (a, b) = tokio::join!(alice.run(), bob.run());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.certificate.subject, format!("O={DOMAIN}, CN=Alice Smith"));
    assert_eq!(b.certificate.subject, format!("O={DOMAIN}, CN=Bob Builder"));
    assert!(
        b.certificate
            .uris
            .contains(&format!("wireapp://%40bob_wire@{DOMAIN}"))
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn alices_tokens_cannot_complete_an_order_for_bobs_identity() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_with_bob(dir.path()).await;
    // Bob enrolls a device; Alice learns its client id.
    let bobs = Enrollment::new(stack.sdk_config("bob_wire", bob().password))
        .run()
        .await
        .unwrap();

    // Alice, logged in as herself, orders a certificate naming Bob's device.
    let config = stack.demo_config();
    let http = server_kit::tls::https_client(&config.tls_roots, config.step_timeout).unwrap();
    let authz = Authz::new(http.clone(), &config.authz_url);
    let tokens = authz.login(&config, None, Step::Login).await.unwrap();
    let alices_device = authz.register_device(&tokens.access_token).await.unwrap();
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let mut acme = AcmeClient::connect(http, &config.acme_directory, key.clone(), 3)
        .await
        .unwrap();
    acme.account().await.unwrap();
    let bob_handle = HandleUri::new("bob_wire", DOMAIN).unwrap();
    let bob_client = ClientId::parse(&bobs.device.client_id).unwrap();
    let ids = vec![
        Identifier {
            kind: "wireapp-device".into(),
            value: DeviceIdentifier::new(bob_client.clone(), bob_handle.clone(), "Bob Builder")
                .unwrap()
                .to_value(),
        },
        Identifier {
            kind: "wireapp-user".into(),
            value: UserIdentifier::new(bob_handle, "Bob Builder")
                .unwrap()
                .to_value(),
        },
    ];
    let dpop_order = challenges_for(&acme, &ids).await;
    let dpop = dpop_order
        .iter()
        .find(|c| c.kind == "wire-dpop-01")
        .unwrap();

    // The backend will not give Alice a nonce for Bob's device.
    let refused = authz
        .backend_nonce(&tokens.access_token, bob_client.device())
        .await
        .unwrap_err();
    assert!(
        matches!(refused.cause, Cause::Server { status: 404, .. }),
        "{refused}"
    );

    // A token for Alice's own device does not answer Bob's challenge.
    let nonce = authz
        .backend_nonce(&tokens.access_token, &alices_device.id)
        .await
        .unwrap();
    let alice_client = ClientId::parse(&alices_device.client_id).unwrap();
    let target = format!(
        "{}/clients/{}/access-token",
        config.authz_url, alices_device.id
    );
    let mut claims = proto::dpop::DpopClaims::new(
        "POST",
        &target,
        proto::clock::Clock::now(&proto::clock::SystemClock),
    );
    claims.exp = Some(claims.iat + 300);
    claims.nonce = Some(nonce);
    claims.wire = Some(proto::dpop::WireClaims {
        chal: dpop.token.clone(),
        sub: alice_client.to_uri(),
        aud: dpop.url.clone(),
        handle: format!("wireapp://%40alice_wire@{DOMAIN}"),
        team: Some("wire".into()),
        name: "Alice Smith".into(),
    });
    let proof = claims.sign(&key).unwrap();
    let token = authz
        .access_token(&tokens.access_token, &alices_device.id, &proof)
        .await
        .unwrap();
    let e = acme
        .answer(
            Step::DpopChallenge,
            &dpop.url,
            &json!({ "access_token": token }),
        )
        .await
        .unwrap_err();
    let Cause::Acme(problem) = &e.cause else {
        panic!("{e}")
    };
    assert_eq!(problem.kind, "urn:ietf:params:acme:error:incorrectResponse");

    // Alice's ID token names Alice, not Bob (on a fresh order: the refusal above ended the
    // first one).
    let oidc_order = challenges_for(&acme, &ids).await;
    let oidc = oidc_order
        .iter()
        .find(|c| c.kind == "wire-oidc-01")
        .unwrap();
    let keyauth = proto::wire_id::key_authorization(&oidc.token, &key.public_jwk().thumbprint());
    let claims =
        json!({"id_token": {"keyauth": {"value": keyauth}, "acme_aud": {"value": oidc.url}}});
    let id_token = authz
        .login(&config, Some(&claims), Step::IdToken)
        .await
        .unwrap()
        .id_token
        .unwrap();
    let e = acme
        .answer(
            Step::OidcChallenge,
            &oidc.url,
            &json!({ "id_token": id_token }),
        )
        .await
        .unwrap_err();
    let Cause::Acme(problem) = &e.cause else {
        panic!("{e}")
    };
    assert_eq!(
        problem.kind,
        "urn:ietf:params:acme:error:rejectedIdentifier"
    );
    stack.shutdown().await.unwrap();
}

/// Creates an order for `ids` and returns the challenges of its authorizations.
async fn challenges_for(acme: &AcmeClient, ids: &[Identifier]) -> Vec<proto::acme::Challenge> {
    let (_, order) = acme.new_order(ids).await.unwrap();
    let mut challenges = Vec::new();
    for url in &order.authorizations {
        let a: Authorization = acme.get(Step::Authorizations, url).await.unwrap();
        challenges.extend(a.challenges);
    }
    challenges
}
