//! PKCE with S256 (RFC 7636): the client's verifier and challenge, and the server's check.

use sha2::{Digest, Sha256};

use crate::secret::constant_time_eq;

/// A verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The verifier (256 random bits, 43 characters).
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair.
    pub fn new() -> Self {
        let verifier = crate::random::token(256);
        let challenge = s256(&verifier);
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// The S256 challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    crate::b64::encode(Sha256::digest(verifier.as_bytes()))
}

/// Checks a verifier against an S256 challenge (RFC 7636 §4.1, §4.6), in constant time.
pub fn matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn rfc7636_appendix_b_s256() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256(verifier), challenge);
        assert!(matches(verifier, challenge));
        assert!(!matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        assert!(!matches("short", &s256("short")));
        let fresh = Pkce::new();
        assert!(matches(&fresh.verifier, &fresh.challenge));
    }
}
