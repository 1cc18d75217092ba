//! Unpredictable identifiers from the operating system's CSPRNG: nonces, challenge tokens,
//! authorization codes, `jti` values.

/// `n` random bytes.
pub fn bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // The OS RNG failing is not recoverable for a security service; getrandom only fails on
    // platforms without an entropy source, where nothing here could run safely anyway.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("operating system random number generator failed");
    buf
}

/// A base64url token carrying `bits` bits of entropy (rounded up to whole bytes).
pub fn token(bits: usize) -> String {
    crate::b64::encode(bytes(bits.div_ceil(8)))
}

/// A random RFC 4122 version 4 UUID in its hyphenated text form, for `jti` claims.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_requested_entropy_and_differ() {
        let a = token(128);
        assert_eq!(crate::b64::decode(&a, "t").unwrap().len(), 16);
        assert_ne!(a, token(128));
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
