//! A client shaped exactly like Wire's (rusty-jwt-tools / core-crypto) against both servers:
//! its newAccount payload (`"contact": ["anonymous@anonymous.invalid"]`, not a `mailto:` URI),
//! a user without a team (the proof carries `"team": null`), Wire's proof times (`iat`/`nbf` an
//! hour back, `exp = iat + 2 h`), and a device clock five minutes fast. The enrollment completes
//! and the certificate names the device and the user.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use client_sdk::Step;
use client_sdk::acme::AcmeClient;
use client_sdk::authz::Authz;
use client_sdk::certificate::{Identity, csr, verify};
use client_sdk::enroll::id_token_claims;
use e2ei_stack::stack::{DOMAIN, ExtraUser, Options, Stack};
use proto::acme::{Authorization, Challenge, OrderStatus};
use proto::clock::{Clock, SystemClock};
use proto::dpop::{DpopClaims, WireClaims, sign_proof_claims};
use proto::jws::{Algorithm, SigningKey};
use proto::secret::SecretString;
use proto::wire_id::{ClientId, HandleUri};
use serde_json::{Value, json};

/// How far ahead of the servers the device's clock runs.
const DEVICE_CLOCK_AHEAD: i64 = 300;

fn carol() -> ExtraUser {
    ExtraUser {
        handle: "carol_wire".into(),
        name: "Carol Teamless".into(),
        password: SecretString::new("carol's long password"),
    }
}

/// Wire's proof: times from the device's clock, and `"team": null` for a user without one.
fn wire_proof(
    key: &SigningKey,
    target: &str,
    nonce: &str,
    challenge: &Challenge,
    client_id: &ClientId,
    handle: &HandleUri,
    name: &str,
) -> String {
    let device_now = SystemClock.now() + DEVICE_CLOCK_AHEAD;
    let mut claims = DpopClaims::new("POST", target, device_now - 3600);
    claims.nbf = Some(device_now - 3600);
    claims.exp = Some(device_now + 3600);
    claims.nonce = Some(nonce.into());
    claims.wire = Some(WireClaims {
        chal: challenge.token.clone(),
        sub: client_id.to_uri(),
        aud: challenge.url.clone(),
        handle: handle.to_uri(),
        team: None,
        name: name.into(),
    });
    let mut body = claims.to_claims();
    body.set("team", Value::Null);
    sign_proof_claims(key, &body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wire_shaped_client_with_a_fast_clock_and_no_team_enrolls() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_with(
        dir.path(),
        Options {
            users: vec![carol()],
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let config = stack.sdk_config("carol_wire", carol().password);
    let http = server_kit::tls::https_client(&config.tls_roots, config.step_timeout).unwrap();
    let authz = Authz::new(http.clone(), &config.authz_url);
    let tokens = authz.login(&config, None, Step::Login).await.unwrap();
    let device = authz.register_device(&tokens.access_token).await.unwrap();
    let client_id = ClientId::parse(&device.client_id).unwrap();
    let handle = HandleUri::new("carol_wire", DOMAIN).unwrap();
    let name = carol().name;

    // newAccount exactly as Wire sends it.
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let mut acme = AcmeClient::connect(http, &config.acme_directory, key.clone(), 3)
        .await
        .unwrap();
    acme.account_with(&json!({
        "termsOfServiceAgreed": true,
        "contact": ["anonymous@anonymous.invalid"],
        "onlyReturnExisting": false,
    }))
    .await
    .unwrap();

    let identity = Identity::new(client_id.clone(), handle.clone(), &name, None).unwrap();
    let identifiers = identity.acme_identifiers();
    let (order_url, order) = acme.new_order(&identifiers).await.unwrap();
    let mut challenges = Vec::new();
    for url in &order.authorizations {
        let authorization: Authorization = acme.get(Step::Authorizations, url).await.unwrap();
        challenges.extend(authorization.challenges);
    }
    let find = |kind: &str| challenges.iter().find(|c| c.kind == kind).unwrap().clone();
    let (dpop, oidc) = (find("wire-dpop-01"), find("wire-oidc-01"));

    // The backend's nonce, Wire's proof, the access token, the DPoP challenge.
    let nonce = authz
        .backend_nonce(&tokens.access_token, &device.id)
        .await
        .unwrap();
    let target = dpop.target.clone().unwrap();
    let proof = wire_proof(&key, &target, &nonce, &dpop, &client_id, &handle, &name);
    let access_token = authz
        .access_token(&tokens.access_token, &device.id, &proof)
        .await
        .unwrap();
    let answered = acme
        .answer(
            Step::DpopChallenge,
            &dpop.url,
            &json!({ "access_token": access_token }),
        )
        .await
        .unwrap();
    assert_eq!(answered.status, proto::acme::ChallengeStatus::Valid);

    // The ID token with keyauth and acme_aud, the OIDC challenge.
    let id_token = authz
        .login(&config, Some(&id_token_claims(&oidc, &key)), Step::IdToken)
        .await
        .unwrap()
        .id_token
        .unwrap();
    acme.answer(
        Step::OidcChallenge,
        &oidc.url,
        &json!({ "id_token": id_token }),
    )
    .await
    .unwrap();

    // Finalize with a credential key of its own; the chain verifies.
    let credential = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let order: proto::acme::Order = acme.get(Step::Order, &order_url).await.unwrap();
    assert_eq!(order.status, OrderStatus::Ready);
    let done = acme
        .finalize(
            &order_url,
            &order,
            &csr(&identity, &credential).unwrap(),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
    let chain = acme
        .certificate(done.certificate.as_deref().unwrap())
        .await
        .unwrap();
    let root = std::fs::read_to_string(&config.ca_root).unwrap();
    let info = verify(
        &chain,
        &root,
        &identity,
        credential.public_key_raw(),
        SystemClock.now(),
        client_sdk::config::DEFAULT_CLOCK_SKEW,
    )
    .unwrap();
    assert_eq!(info.subject, format!("O={DOMAIN}, CN=Carol Teamless"));
    stack.shutdown().await.unwrap();
}
