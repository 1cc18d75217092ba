//! The DER of keys: PKCS#8 (RFC 5208) wrapping of SEC1 EC private keys (RFC 5915), so every
//! stored key is PKCS#8 whatever produced it (OpenSSL writes bare `ECPrivateKey`s, ring reads
//! only PKCS#8), and the `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) of a public key, as CSRs and
//! certificates carry it.

/// A DER TLV with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The named curves we sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcCurveOid {
    /// prime256v1 (1.2.840.10045.3.1.7).
    P256,
    /// secp384r1 (1.3.132.0.34).
    P384,
}

const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// `SubjectPublicKeyInfo` of an algorithm identifier and the public key bits.
fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let bits = [&[0u8][..], key].concat();
    tlv(0x30, &[tlv(0x30, algorithm), tlv(0x03, &bits)].concat())
}

/// The SPKI of an EC public key (the uncompressed point).
pub fn ec_spki(curve: EcCurveOid, point: &[u8]) -> Vec<u8> {
    let curve = match curve {
        EcCurveOid::P256 => P256,
        EcCurveOid::P384 => P384,
    };
    spki(
        &[tlv(0x06, EC_PUBLIC_KEY), tlv(0x06, curve)].concat(),
        point,
    )
}

/// The SPKI of an Ed25519 public key (RFC 8410).
pub fn ed25519_spki(key: &[u8]) -> Vec<u8> {
    spki(&tlv(0x06, ED25519), key)
}

/// The SPKI of an RSA public key given as its DER `RSAPublicKey` (RFC 8017 §A.1.1).
pub fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    spki(
        &[tlv(0x06, RSA_ENCRYPTION), tlv(0x05, &[])].concat(),
        rsa_public_key,
    )
}

/// Whether `der` is a SEC1 `ECPrivateKey` (version 1) rather than a PKCS#8 `PrivateKeyInfo`
/// (version 0): both start with a SEQUENCE and an INTEGER.
pub fn is_sec1_ec_key(der: &[u8]) -> bool {
    let Some(&[0x30, first]) = der.get(..2) else {
        return false;
    };
    let skip = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7f)
    };
    der.get(skip..skip + 3) == Some(&[0x02, 0x01, 0x01])
}

/// Wraps a SEC1 `ECPrivateKey` on `curve` as PKCS#8 `PrivateKeyInfo`.
pub fn wrap_sec1(curve: EcCurveOid, sec1: &[u8]) -> Vec<u8> {
    let curve = match curve {
        EcCurveOid::P256 => P256,
        EcCurveOid::P384 => P384,
    };
    let algorithm = tlv(0x30, &[tlv(0x06, EC_PUBLIC_KEY), tlv(0x06, curve)].concat());
    tlv(
        0x30,
        &[tlv(0x02, &[0]), algorithm, tlv(0x04, sec1)].concat(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn openssl_sec1_keys_wrap_into_pkcs8_that_ring_reads() {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        // Written by `openssl ecparam -genkey -noout -outform DER`.
        for (curve, alg, sec1) in [
            (
                EcCurveOid::P256,
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &include_bytes!("../tests/vectors/p256-test-key.sec1.der")[..],
            ),
            (
                EcCurveOid::P384,
                &ECDSA_P384_SHA384_FIXED_SIGNING,
                &include_bytes!("../tests/vectors/p384-test-key.sec1.der")[..],
            ),
        ] {
            assert!(is_sec1_ec_key(sec1));
            assert!(ring::signature::EcdsaKeyPair::from_pkcs8(alg, sec1, &rng).is_err());
            let pkcs8 = wrap_sec1(curve, sec1);
            assert!(!is_sec1_ec_key(&pkcs8));
            assert!(ring::signature::EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &rng).is_ok());
        }
    }

    #[test]
    fn keys_loaded_give_the_spki_and_jwk_openssl_gives() {
        use crate::jws::{Algorithm, SigningKey};
        // The public halves as `openssl pkey -pubout -outform DER` writes them.
        for (alg, der) in [
            (
                Algorithm::Es256,
                &include_bytes!("../tests/vectors/p256-test-key.sec1.der")[..],
            ),
            (
                Algorithm::Es384,
                &include_bytes!("../tests/vectors/p384-test-key.sec1.der")[..],
            ),
            (
                Algorithm::Rs256,
                &include_bytes!("../tests/vectors/rsa-2048-test-key.pk8.der")[..],
            ),
        ] {
            let key = SigningKey::from_pkcs8_der(alg, der).unwrap();
            let from_spki = crate::spki::jwk_from_spki_der(key.public_spki_der()).unwrap();
            assert_eq!(&from_spki, key.public_jwk(), "{alg:?}");
        }
        for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa] {
            let key = crate::test_keys::key_for(alg);
            let from_spki = crate::spki::jwk_from_spki_der(key.public_spki_der()).unwrap();
            assert_eq!(&from_spki, key.public_jwk(), "{alg:?}");
        }
    }

    #[test]
    fn long_lengths_use_the_long_form() {
        let content = vec![7u8; 300];
        let out = tlv(0x04, &content);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(out.len(), 304);
    }
}
