//! `floor`: the cryptographic work one enrollment costs the two servers, timed in this process
//! on this machine, and the resulting ceiling in enrollments per second per core.
//!
//! Per enrollment (DESIGN §4, as the servers implement it): the authz-server verifies one
//! password (argon2id: the first login; the ID token step goes on in that login's session),
//! signs five ES256 JWTs (two access tokens, two ID tokens, the
//! Wire access token), verifies three ES256 access tokens (device registration, nonce,
//! access-token endpoint) and one EdDSA DPoP proof; the acme-server verifies eleven EdDSA JWS
//! (eight ACME requests, the embedded proof, the CSR) and two ES256 JWTs (access token, ID
//! token) and signs one certificate (ECDSA P-256); each server completes one TLS handshake
//! (its ECDSA P-256 CertificateVerify signature is counted as one ES256 signature; the key
//! exchange is not).

use std::time::Instant;

use anyhow::Result;
use proto::jws::{Algorithm, SigningKey, UnverifiedJws};
use serde::Serialize;
use serde_json::json;

/// One operation's cost and count.
#[derive(Debug, Serialize)]
pub struct Op {
    /// Name.
    pub name: &'static str,
    /// Microseconds per operation.
    pub micros: f64,
    /// Times per enrollment.
    pub per_enrollment: u32,
}

/// The floor.
#[derive(Debug, Serialize)]
pub struct Floor {
    /// The operations.
    pub ops: Vec<Op>,
    /// CPU milliseconds per enrollment if only these ran.
    pub floor_ms: f64,
    /// 1000 / floor_ms.
    pub ceiling_per_core: f64,
}

fn time<F: FnMut()>(iterations: u32, mut op: F) -> f64 {
    op();
    let t = Instant::now();
    for _ in 0..iterations {
        op();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

/// Measures each operation (`iterations` times, argon2 a tenth as often).
pub fn measure(iterations: u32) -> Result<Floor> {
    let claims = json!({"iss": "https://a.test", "sub": "s", "exp": 2_000_000_000, "jti": "j"});
    let claims = claims.as_object().cloned().unwrap_or_default();
    let es = SigningKey::generate(Algorithm::Es256)?;
    let ed = SigningKey::generate(Algorithm::EdDsa)?;
    let es_token = es.sign_jwt("JWT", false, &claims)?;
    let ed_token = ed.sign_jwt("JWT", false, &claims)?;
    let (es_key, ed_key) = (es.public_jwk().clone(), ed.public_jwk().clone());
    let es_sign = time(iterations, || {
        let _ = es.sign_jwt("JWT", false, &claims);
    });
    let es_verify = time(iterations, || {
        let _ = UnverifiedJws::from_compact(&es_token).and_then(|j| j.verify(&es_key));
    });
    let ed_verify = time(iterations, || {
        let _ = UnverifiedJws::from_compact(&ed_token).and_then(|j| j.verify(&ed_key));
    });

    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    let salt = SaltString::encode_b64(b"benchmark salt!!").map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = argon2::Argon2::default()
        .hash_password(b"a password", &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("{e}"))?;
    let argon = time((iterations / 10).max(1), || {
        let _ = argon2::Argon2::default().verify_password(b"a password", &parsed);
    });

    let ca_key = rcgen::KeyPair::generate()?;
    let ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let leaf = rcgen::CertificateParams::new(vec!["leaf.test".to_owned()])?;
    let cert_sign = time(iterations, || {
        let _ = leaf.signed_by(&leaf_key, &issuer);
    });

    let ops = vec![
        Op {
            name: "argon2id verify",
            micros: argon,
            per_enrollment: 1,
        },
        Op {
            name: "ES256 sign (JWT, TLS)",
            micros: es_sign,
            per_enrollment: 5 + 2,
        },
        Op {
            name: "ES256 verify",
            micros: es_verify,
            per_enrollment: 3 + 2,
        },
        Op {
            name: "EdDSA verify",
            micros: ed_verify,
            per_enrollment: 1 + 11,
        },
        Op {
            name: "certificate sign (P-256)",
            micros: cert_sign,
            per_enrollment: 1,
        },
    ];
    let floor_ms: f64 = ops
        .iter()
        .map(|o| o.micros * f64::from(o.per_enrollment))
        .sum::<f64>()
        / 1e3;
    Ok(Floor {
        ops,
        floor_ms,
        ceiling_per_core: 1e3 / floor_ms,
    })
}
