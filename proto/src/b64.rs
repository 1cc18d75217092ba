//! base64url without padding (RFC 4648 §5), the encoding of every JOSE member.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{Error, Result};

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `what` names the field in the error.
pub fn decode(text: &str, what: &'static str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Error::Base64 { field: what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_padding() {
        assert_eq!(encode(b"\xfb\xff"), "-_8");
        assert_eq!(decode("-_8", "x").unwrap(), b"\xfb\xff");
        assert_eq!(decode("-_8=", "x"), Err(Error::Base64 { field: "x" }));
        assert_eq!(decode("+/8", "x"), Err(Error::Base64 { field: "x" }));
    }
}
