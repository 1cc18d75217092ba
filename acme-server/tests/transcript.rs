//! The recorded Wire enrollment (`proto/tests/vectors/wire-enrollment-transcript.json`) against the
//! ACME server: its access token and ID token pass the challenge verifiers at the recorded
//! instant and fail when any one expectation changes, with the problem type the server would
//! send; its CSR finalizes an order for its identifiers over HTTPS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use acme_server::config::{DpopConfig, OidcConfig};
use acme_server::error::{ProblemType, challenge_problem};
use acme_server::va::{ChallengeContext, WireContext, WireSubject, wire_dpop, wire_oidc};
use common::*;
use proto::access_token::{AccessTokenParams, issue_access_token};
use proto::acme::{Identifier, Order, OrderStatus};
use proto::dpop::{DpopCheck, DpopClaims, DpopPolicy, NonceCheck, WireClaims, WireExpectations};
use proto::jwk::Jwk;
use proto::jws::{Algorithm, SigningKey};
use proto::wire_id::{ClientId, DeviceIdentifier, HandleUri, WireIdentity};
use serde_json::json;

#[path = "../../proto/tests/support/transcript.rs"]
mod vectors;

use vectors::Transcript;

fn device(t: &Transcript) -> DeviceIdentifier {
    DeviceIdentifier::parse(&t.s("/device_identifier/value")).unwrap()
}

fn transcript_identifiers(t: &Transcript) -> Vec<Identifier> {
    ["device_identifier", "user_identifier"]
        .iter()
        .map(|name| serde_json::from_value(t.0[name].clone()).unwrap())
        .collect()
}

/// The verification context of one challenge, owned so one field at a time can change.
#[derive(Clone)]
struct Context {
    account_key: Jwk,
    url: String,
    token: String,
    target: String,
    client_id: ClientId,
    handle: HandleUri,
    name: String,
}

impl Context {
    fn of(t: &Transcript, challenge: &str) -> Self {
        let device = device(t);
        Self {
            account_key: t.jwk("acme_account_jwk"),
            url: t.s(&format!("/{challenge}/url")),
            token: t.s(&format!("/{challenge}/token")),
            target: t.s(&format!("/{challenge}/target")),
            client_id: device.client_id,
            handle: device.handle,
            name: device.name,
        }
    }
    fn identity(&self) -> WireIdentity {
        WireIdentity::new(
            self.client_id.clone(),
            self.handle.clone(),
            &self.name,
            None,
        )
        .unwrap()
    }

    fn view<'a>(&'a self, identity: &'a WireIdentity) -> WireContext<'a> {
        ChallengeContext {
            account_key: &self.account_key,
            url: &self.url,
            token: &self.token,
            subject: WireSubject {
                identity,
                target: &self.target,
            },
        }
    }
}

type Twist = (&'static str, Box<dyn Fn(&mut Context)>, ProblemType);

fn common_twists() -> Vec<Twist> {
    vec![
        (
            "another account key",
            Box::new(|c| {
                c.account_key = SigningKey::generate(Algorithm::EdDsa)
                    .unwrap()
                    .public_jwk()
                    .clone()
            }),
            ProblemType::IncorrectResponse,
        ),
        (
            "another challenge token",
            Box::new(|c| c.token.push('x')),
            ProblemType::IncorrectResponse,
        ),
        (
            "another challenge url",
            Box::new(|c| c.url.push('x')),
            ProblemType::IncorrectResponse,
        ),
        (
            "another handle",
            Box::new(|c| c.handle = HandleUri::new("bob", "wire.com").unwrap()),
            ProblemType::RejectedIdentifier,
        ),
        (
            "another name",
            Box::new(|c| c.name = "Bob".into()),
            ProblemType::RejectedIdentifier,
        ),
    ]
}

#[test]
fn transcript_access_token_passes_wire_dpop_01_and_each_twist_is_refused() {
    let t = Transcript::load();
    let keys = [t.jwk("backend_jwk")];
    let policy = wire_dpop::policy(&DpopConfig::default());
    let token = t.s("/access_token");
    let good = Context::of(&t, "dpop_challenge");
    wire_dpop::check(
        &token,
        &good.view(&good.identity()),
        &keys,
        &policy,
        t.now(),
    )
    .unwrap();

    let mut twists = common_twists();
    // The key binding is checked before the challenge: a token for another key is refused
    // as unauthorized.
    twists[0].2 = ProblemType::Unauthorized;
    twists.push((
        "another device",
        Box::new(|c| {
            c.client_id =
                ClientId::new(*b"0123456789abcdef", "9ff0457928ebe5f4", "wire.com").unwrap()
        }),
        ProblemType::RejectedIdentifier,
    ));
    twists.push((
        "another target",
        Box::new(|c| c.target.push('x')),
        ProblemType::IncorrectResponse,
    ));
    for (what, twist, expected) in twists {
        let mut ctx = good.clone();
        twist(&mut ctx);
        let e = wire_dpop::check(&token, &ctx.view(&ctx.identity()), &keys, &policy, t.now())
            .unwrap_err();
        assert_eq!(challenge_problem(&e), expected, "{what}: {e}");
    }
    let stranger = [SigningKey::generate(Algorithm::EdDsa)
        .unwrap()
        .public_jwk()
        .clone()];
    let e = wire_dpop::check(
        &token,
        &good.view(&good.identity()),
        &stranger,
        &policy,
        t.now(),
    )
    .unwrap_err();
    assert_eq!(e, proto::Error::UnknownSigningKey);
    let e = wire_dpop::check(
        &token,
        &good.view(&good.identity()),
        &keys,
        &policy,
        t.now() + 3600,
    )
    .unwrap_err();
    assert_eq!(e, proto::Error::Expired);
}

#[test]
fn transcript_id_token_passes_wire_oidc_01_and_each_twist_is_refused() {
    let t = Transcript::load();
    let mut key = proto::spki::jwk_from_spki_pem(&t.s("/idp_public_key_pem")).unwrap();
    key.kid = Some(t.s("/id_token_header/kid"));
    let keys = [key];
    let config = OidcConfig {
        issuer: t.s("/oidc_challenge/target"),
        client_id: t.s("/oidc_client_id"),
        ..OidcConfig::default()
    };
    let token = t.s("/id_token");
    let good = Context::of(&t, "oidc_challenge");
    wire_oidc::check(
        &token,
        &good.view(&good.identity()),
        &keys,
        &config,
        t.now(),
    )
    .unwrap();
    for (what, twist, expected) in common_twists() {
        let mut ctx = good.clone();
        twist(&mut ctx);
        let e = wire_oidc::check(&token, &ctx.view(&ctx.identity()), &keys, &config, t.now())
            .unwrap_err();
        assert_eq!(challenge_problem(&e), expected, "{what}: {e}");
    }
    let other_issuer = OidcConfig {
        issuer: "http://keycloak:42577/realms/other".into(),
        ..config.clone()
    };
    let e = wire_oidc::check(
        &token,
        &good.view(&good.identity()),
        &keys,
        &other_issuer,
        t.now(),
    )
    .unwrap_err();
    assert_eq!(e, proto::Error::IssMismatch);
    let other_client = OidcConfig {
        client_id: "other".into(),
        ..config.clone()
    };
    let e = wire_oidc::check(
        &token,
        &good.view(&good.identity()),
        &keys,
        &other_client,
        t.now(),
    )
    .unwrap_err();
    assert_eq!(e, proto::Error::AudMismatch);
    let e = wire_oidc::check(
        &token,
        &good.view(&good.identity()),
        &keys,
        &config,
        t.now() + 3600,
    )
    .unwrap_err();
    assert_eq!(e, proto::Error::Expired);
}

/// Signs a backend access token for `challenge` as a backend holding `backend` would, after
/// verifying the device's proof the way the backend does.
fn backend_token(
    backend: &SigningKey,
    account: &SigningKey,
    device: &DeviceIdentifier,
    challenge: &proto::acme::Challenge,
    now: i64,
) -> String {
    let target = challenge.target.clone().unwrap();
    let nonce = proto::random::token(128);
    let mut claims = DpopClaims::new("POST", &target, now);
    claims.nonce = Some(nonce.clone());
    claims.exp = Some(now + 300);
    claims.wire = Some(WireClaims {
        chal: challenge.token.clone(),
        sub: device.client_id.to_uri(),
        aud: challenge.url.clone(),
        handle: device.handle.to_uri(),
        team: Some("wire".into()),
        name: device.name.clone(),
    });
    let proof = claims.sign(account).unwrap();
    let verified = proto::dpop::verify_dpop_proof(
        &proof,
        &DpopCheck {
            htm: "POST",
            htu: &target,
            nonce: NonceCheck::Equals(&nonce),
            access_token: None,
            wire: Some(WireExpectations {
                identity: &WireIdentity::new(
                    device.client_id.clone(),
                    device.handle.clone(),
                    &device.name,
                    None,
                )
                .unwrap(),
                challenge: None,
                audience: None,
            }),
        },
        &DpopPolicy::wire(),
        now,
    )
    .unwrap();
    issue_access_token(
        backend,
        &verified,
        &AccessTokenParams {
            issuer: &target,
            lifetime: 300,
            now,
        },
    )
    .unwrap()
    .token
}

#[tokio::test]
async fn the_transcript_csr_finalizes_an_order_for_the_transcript_identifiers() {
    let t = Transcript::load();
    // The backend is configured by its public key (PEM) and answered here with that key's
    // private half; the identity provider is the real authz-server, whose demo user is the
    // transcript's alice_wire / "Alice Smith" on wire.com.
    let backend = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let backend_dir = tempfile::tempdir().unwrap();
    let backend_pem = backend_dir.path().join("backend.pem");
    let pair = rcgen::KeyPair::try_from(backend.pkcs8_der().expose()).unwrap();
    std::fs::write(&backend_pem, pair.public_key_pem()).unwrap();
    let env = Env::start_with(|c| {
        c.wire_dpop.backend_jwks_url = None;
        c.wire_dpop.backend_keys = vec![backend_pem.clone()];
        c.wire_dpop.target = "http://wire.com:46335/clients/{device-id}/access-token".into();
    })
    .await;

    let account = env.client.new_account().await;
    let (order_url, order) = env
        .client
        .new_order(&account, &transcript_identifiers(&t))
        .await;
    let (device_authz, user_authz) = env.client.authzs(&account, &order).await;
    let dpop = &device_authz.challenges[0];
    assert_eq!(
        dpop.target.as_deref(),
        Some(t.s("/dpop_challenge/target").as_str())
    );

    let token = backend_token(&backend, &account.key, &device(&t), dpop, env.now());
    let response = env
        .client
        .answer(&account, &dpop.url, json!({ "access_token": token }))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    let oidc = &user_authz.challenges[0];
    let keyauth =
        proto::wire_id::key_authorization(&oidc.token, &account.key.public_jwk().thumbprint());
    let id_token = env.id_token(&keyauth, &oidc.url).await;
    let response = env
        .client
        .answer(&account, &oidc.url, json!({ "id_token": id_token }))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    let (_, csr) = x509_parser::pem::parse_x509_pem(t.s("/csr_pem").as_bytes()).unwrap();
    let response = env
        .client
        .post_as(
            &account,
            &order.finalize,
            Some(&finalize_payload(&csr.contents)),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let order: Order = env.client.get(&account, &order_url).await;
    assert_eq!(order.status, OrderStatus::Valid);
    let chain = env
        .client
        .post_as(&account, &order.certificate.unwrap(), None)
        .await
        .text()
        .await
        .unwrap();
    let (_, leaf) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).unwrap();
    let leaf = leaf.parse_x509().unwrap();
    let (_, recorded) =
        x509_parser::pem::parse_x509_pem(t.s("/certificate_chain_pem").as_bytes()).unwrap();
    let recorded = recorded.parse_x509().unwrap();
    assert_eq!(leaf.subject().to_string(), recorded.subject().to_string());
    assert_eq!(
        leaf.subject_alternative_name().unwrap().unwrap().value,
        recorded.subject_alternative_name().unwrap().unwrap().value,
        "the same SAN URIs, in Wire's order and encoding"
    );
    assert_eq!(leaf.public_key().raw, recorded.public_key().raw);
}
