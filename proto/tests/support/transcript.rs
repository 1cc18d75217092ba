//! Loading the recorded Wire enrollment (`shared/vectors/wire-enrollment-transcript.json`,
//! beside the checkout), shared by the test suites that check against it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use proto::jwk::Jwk;
use serde_json::Value;

/// The transcript as JSON.
pub struct Transcript(pub Value);

impl Transcript {
    /// Reads the transcript; a missing file fails the test (it must be present in CI).
    pub fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/vectors/wire-enrollment-transcript.json"
        );
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("transcript at {path}: {e}"));
        Self(serde_json::from_str(&text).unwrap())
    }

    /// A string at a JSON pointer.
    pub fn s(&self, pointer: &str) -> String {
        self.0
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{pointer}"))
            .to_owned()
    }

    /// The instant the recorded tokens are verified at.
    pub fn now(&self) -> i64 {
        self.0["verify_at_unix"].as_i64().unwrap()
    }

    /// A JWK member.
    pub fn jwk(&self, name: &str) -> Jwk {
        Jwk::from_json(&self.0[name]).unwrap()
    }
}
