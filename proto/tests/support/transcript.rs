//! Loading the recorded Wire enrollment (`proto/tests/vectors/wire-enrollment-transcript.json`,
//! see `proto/tests/vectors/README.md` for where its values come from), shared by the test
//! suites that check against it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use proto::jwk::Jwk;
use serde_json::Value;

/// The transcript as JSON.
pub struct Transcript(pub Value);

impl Transcript {
    /// The transcript, compiled into the test binary (the path is relative to this file, so
    /// every crate that includes this module reads the same copy).
    pub fn load() -> Self {
        const TEXT: &str = include_str!("../vectors/wire-enrollment-transcript.json");
        Self(serde_json::from_str(TEXT).unwrap())
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
