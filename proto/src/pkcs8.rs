//! PKCS#8 (RFC 5208) wrapping of SEC1 EC private keys (RFC 5915), so every stored key is
//! PKCS#8 whatever produced it: OpenSSL (through josekit) writes bare `ECPrivateKey`s, ring reads
//! only PKCS#8.

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
        for (curve, alg, sec1) in [
            (
                EcCurveOid::P256,
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                josekit::jws::ES256
                    .generate_key_pair()
                    .unwrap()
                    .to_der_private_key(),
            ),
            (
                EcCurveOid::P384,
                &ECDSA_P384_SHA384_FIXED_SIGNING,
                josekit::jws::ES384
                    .generate_key_pair()
                    .unwrap()
                    .to_der_private_key(),
            ),
        ] {
            assert!(is_sec1_ec_key(&sec1));
            assert!(ring::signature::EcdsaKeyPair::from_pkcs8(alg, &sec1, &rng).is_err());
            let pkcs8 = wrap_sec1(curve, &sec1);
            assert!(!is_sec1_ec_key(&pkcs8));
            assert!(ring::signature::EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &rng).is_ok());
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
