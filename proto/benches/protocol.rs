//! Micro-benchmarks of the protocol checks the servers run per enrollment: JWS verification by
//! algorithm, a Wire DPoP proof, a Wire access token (with its embedded proof), a DPoP proof
//! issued by the SDK, and a JWK thumbprint. `cargo bench -p proto`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use proto::access_token::{
    AccessTokenCheck, AccessTokenParams, AccessTokenPolicy, issue_access_token, verify_access_token,
};
use proto::dpop::{
    DpopCheck, DpopClaims, DpopPolicy, NonceCheck, WireClaims, WireExpectations, verify_dpop_proof,
};
use proto::jws::{Algorithm, SigningKey, UnverifiedJws};
use proto::wire_id::{ClientId, HandleUri};

const NOW: i64 = 1_763_129_560;
const TARGET: &str = "https://backend.test/clients/9ff0457928ebe5f4/access-token";
const CHALLENGE: &str = "https://acme.test/acme/wire/challenge/a/b";

fn jws(c: &mut Criterion) {
    let claims = serde_json::json!({"iss": "https://a.test", "exp": 2_000_000_000});
    let claims = claims.as_object().unwrap().clone();
    for alg in [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256] {
        let key = proto::test_keys::key_for(alg);
        let token = key.sign_jwt("JWT", false, &claims).unwrap();
        let public = key.public_jwk().clone();
        c.bench_function(&format!("jws verify {}", alg.name()), |b| {
            b.iter(|| {
                UnverifiedJws::from_compact(black_box(&token))
                    .unwrap()
                    .verify(&public)
                    .unwrap()
            })
        });
        c.bench_function(&format!("jws sign {}", alg.name()), |b| {
            b.iter(|| key.sign_jwt("JWT", false, black_box(&claims)).unwrap())
        });
    }
}

fn wire(c: &mut Criterion) {
    let account = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let backend = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("b1");
    let client_id = ClientId::new(*b"0123456789abcdef", "9ff0457928ebe5f4", "wire.com").unwrap();
    let handle = HandleUri::new("alice_wire", "wire.com").unwrap();
    let mut claims = DpopClaims::new("POST", TARGET, NOW);
    claims.exp = Some(NOW + 300);
    claims.nonce = Some("nonce-1".into());
    claims.wire = Some(WireClaims {
        chal: "chal-1".into(),
        sub: client_id.to_uri(),
        aud: CHALLENGE.into(),
        handle: handle.to_uri(),
        team: Some("wire".into()),
        name: "Alice Smith".into(),
    });
    let proof = claims.sign(&account).unwrap();
    let with_team = proto::wire_id::WireIdentity::new(
        client_id.clone(),
        handle.clone(),
        "Alice Smith",
        Some("wire".into()),
    )
    .unwrap();
    let without_team =
        proto::wire_id::WireIdentity::new(client_id.clone(), handle.clone(), "Alice Smith", None)
            .unwrap();
    let check = DpopCheck {
        htm: "POST",
        htu: TARGET,
        nonce: NonceCheck::Equals("nonce-1"),
        access_token: None,
        wire: Some(WireExpectations {
            identity: &with_team,
            challenge: None,
            audience: None,
        }),
    };
    c.bench_function("wire dpop proof verify (EdDSA)", |b| {
        b.iter(|| verify_dpop_proof(black_box(&proof), &check, &DpopPolicy::wire(), NOW).unwrap())
    });
    let verified = verify_dpop_proof(&proof, &check, &DpopPolicy::wire(), NOW).unwrap();
    let token = issue_access_token(
        &backend,
        &verified,
        &AccessTokenParams {
            issuer: TARGET,
            lifetime: 300,
            now: NOW,
        },
    )
    .unwrap()
    .token;
    let keys = [backend.public_jwk().clone()];
    let token_check = AccessTokenCheck {
        backend_keys: &keys,
        issuer: TARGET,
        audience: CHALLENGE,
        account_key: account.public_jwk(),
        challenge_token: "chal-1",
        identity: &without_team,
    };
    c.bench_function(
        "wire access token verify (ES256 + embedded EdDSA proof)",
        |b| {
            b.iter(|| {
                verify_access_token(
                    black_box(&token),
                    &token_check,
                    &AccessTokenPolicy::default(),
                    NOW,
                )
                .unwrap()
            })
        },
    );
    c.bench_function("jwk thumbprint", |b| {
        b.iter(|| black_box(account.public_jwk()).thumbprint())
    });
}

criterion_group!(benches, jws, wire);
criterion_main!(benches);
