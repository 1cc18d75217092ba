//! Which Ed25519 public keys we accept (RFC 8032 §5.1.3): a key must be the canonical encoding
//! of a point that is not of small order. A small-order key (the identity, or one of the seven
//! other points whose order divides the cofactor 8) makes signatures meaningless — with the
//! identity as the key, `R = identity, S = 0` verifies for every message under a cofactorless
//! check — and a non-canonical encoding (a `y` coordinate of `p` or more) names a key that
//! another, canonical, encoding also names, which would let it past a comparison of keys.
//!
//! The encodings below were derived here from the curve equation (the order-8 points have
//! `y² = (-1 ± √(1+d)) / d`), not copied.

/// `y` coordinates (little-endian, sign bit clear) of every point of order 1, 2, 4 or 8:
/// 0 (order 4), 1 (the identity), p − 1 (order 2), and the two of order 8.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    {
        let mut one = [0; 32];
        one[0] = 1;
        one
    },
    {
        let mut p_minus_one = [0xff; 32];
        p_minus_one[0] = 0xec;
        p_minus_one[31] = 0x7f;
        p_minus_one
    },
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Whether the 32-byte encoding `key` is a canonical encoding of a point of large order.
/// (Whether it is on the curve at all is left to the signature check, which decodes it.)
pub fn is_acceptable_public_key(key: &[u8]) -> bool {
    let Ok(key) = <[u8; 32]>::try_from(key) else {
        return false;
    };
    let mut y = key;
    y[31] &= 0x7f;
    !is_at_least_p(&y) && !SMALL_ORDER_Y.contains(&y)
}

/// Whether the little-endian 255-bit number `y` is at least p = 2²⁵⁵ − 19, i.e. one of
/// p … 2²⁵⁵ − 1: all bytes 0xff but the first (≥ 0xed) and the last (0x7f).
fn is_at_least_p(y: &[u8; 32]) -> bool {
    y[0] >= 0xed && y[1..31].iter().all(|b| *b == 0xff) && y[31] == 0x7f
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::jws::{Algorithm, SigningKey};

    #[test]
    fn every_small_order_point_is_refused_with_either_sign() {
        for y in SMALL_ORDER_Y {
            for sign in [0, 0x80] {
                let mut key = y;
                key[31] |= sign;
                assert!(!is_acceptable_public_key(&key), "{key:02x?}");
            }
        }
    }

    #[test]
    fn encodings_of_p_and_above_are_refused() {
        for low in 0xed..=0xff {
            let mut key = [0xff; 32];
            key[0] = low;
            key[31] = 0x7f;
            assert!(!is_acceptable_public_key(&key));
            key[31] = 0xff;
            assert!(!is_acceptable_public_key(&key));
        }
        // p − 2 is canonical (and not of small order).
        let mut below = [0xff; 32];
        below[0] = 0xeb;
        below[31] = 0x7f;
        assert!(is_acceptable_public_key(&below));
    }

    #[test]
    fn real_keys_are_accepted() {
        // RFC 8032 §7.1 test 1 public key, and freshly generated ones.
        let rfc8032 = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        assert!(is_acceptable_public_key(&rfc8032));
        for _ in 0..20 {
            let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
            let jwk = key.public_jwk().to_json();
            let x = crate::b64::decode(jwk["x"].as_str().unwrap(), "x").unwrap();
            assert!(is_acceptable_public_key(&x));
        }
        assert!(!is_acceptable_public_key(&[1; 31]));
    }
}
