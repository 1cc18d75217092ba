//! Public keys in X.509 form (DER `SubjectPublicKeyInfo`, RFC 5280 §4.1.2.7) turned into
//! [`Jwk`]s, so a key from a CSR or from a PEM file can be compared with JOSE keys and used to
//! verify JWS: EC P-256/P-384 (uncompressed points), Ed25519 (RFC 8410) and RSA.

use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::jwk::{EcCurve, Jwk, JwkParams};
use crate::{Error, Result, b64};

const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// The JWK of a DER `SubjectPublicKeyInfo`.
pub fn jwk_from_spki_der(der: &[u8]) -> Result<Jwk> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
        .map_err(|_| Error::InvalidJwk("not a DER SubjectPublicKeyInfo"))?;
    if !rest.is_empty() {
        return Err(Error::InvalidJwk("trailing bytes after the public key"));
    }
    jwk_from_spki(&spki)
}

/// The JWK of a parsed `SubjectPublicKeyInfo` (as found in a certificate or CSR).
pub fn jwk_from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Jwk> {
    let algorithm = spki.algorithm.algorithm.to_id_string();
    if algorithm == OID_ED25519 {
        let x = &spki.subject_public_key.data;
        if x.len() != 32 {
            return Err(Error::InvalidJwk("an Ed25519 key has 32 bytes"));
        }
        return Jwk::from_params(JwkParams::Ed25519 { x: b64::encode(x) });
    }
    let parsed = spki
        .parsed()
        .map_err(|_| Error::InvalidJwk("unreadable public key"))?;
    let params = match parsed {
        PublicKey::RSA(rsa) => JwkParams::Rsa {
            n: b64::encode(strip_leading_zeros(rsa.modulus)),
            e: b64::encode(strip_leading_zeros(rsa.exponent)),
        },
        PublicKey::EC(point) => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            let crv = match curve_oid.as_deref() {
                Some(OID_P256) => EcCurve::P256,
                Some(OID_P384) => EcCurve::P384,
                _ => return Err(Error::InvalidJwk("unsupported elliptic curve")),
            };
            let data = point.data();
            let len = if crv == EcCurve::P256 { 32 } else { 48 };
            if data.len() != 1 + 2 * len || data.first() != Some(&4) {
                return Err(Error::InvalidJwk("EC point is not uncompressed"));
            }
            JwkParams::Ec {
                crv,
                x: b64::encode(&data[1..=len]),
                y: b64::encode(&data[1 + len..]),
            }
        }
        _ => return Err(Error::InvalidJwk("unsupported public key type")),
    };
    Jwk::from_params(params)
}

/// The JWK of a PEM `PUBLIC KEY` block.
pub fn jwk_from_spki_pem(pem: &str) -> Result<Jwk> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PUBLIC KEY-----")
        .collect();
    if body.is_empty() {
        return Err(Error::InvalidJwk("no PUBLIC KEY block"));
    }
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| Error::Base64 { field: "PEM" })?;
    jwk_from_spki_der(&der)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::Algorithm;

    #[test]
    fn ed25519_pem_gives_the_jwk_of_the_same_key() {
        // The transcript's ACME account key, as PEM and as JWK (x).
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA+5zCew93D/bahlxo2Gw5ceNyNOSqAxcbMuM8dBMI1Kg=\n-----END PUBLIC KEY-----\n";
        let jwk = jwk_from_spki_pem(pem).unwrap();
        assert_eq!(
            jwk.params,
            JwkParams::Ed25519 {
                x: "-5zCew93D_bahlxo2Gw5ceNyNOSqAxcbMuM8dBMI1Kg".into()
            }
        );
    }

    #[test]
    fn generated_keys_round_trip_through_spki() {
        for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa] {
            let key = crate::test_keys::key_for(alg);
            let der = key.public_spki_der();
            assert!(jwk_from_spki_der(der).unwrap().same_key(key.public_jwk()));
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(jwk_from_spki_der(b"\x30\x03\x02\x01\x00").is_err());
        assert!(jwk_from_spki_pem("no pem here").is_err());
    }
}
