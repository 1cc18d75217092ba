//! The one error type of the SDK: which step failed and why, with the server's own words (an
//! ACME problem document, an OAuth error, a Wire label) when there are some.

use std::fmt;

use proto::acme::Problem;

use crate::step::Step;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The server could not be reached or the connection broke.
    Network(String),
    /// The step took longer than the configured timeout.
    Timeout,
    /// The ACME server refused with a problem document.
    Acme(Problem),
    /// The authz-server refused (HTTP status and its error body).
    Server { status: u16, body: String },
    /// A response did not make sense (missing header, wrong JSON, unexpected status).
    Protocol(String),
    /// The issued certificate does not certify what was asked, or the chain does not verify.
    Verification(String),
    /// Local configuration, keys or files.
    Local(String),
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network(m) => write!(f, "network: {m}"),
            Self::Timeout => write!(f, "timed out"),
            Self::Acme(p) => write!(f, "ACME {}: {}", p.kind, p.detail),
            Self::Server { status, body } => write!(f, "HTTP {status}: {body}"),
            Self::Protocol(m) => write!(f, "unexpected response: {m}"),
            Self::Verification(m) => write!(f, "verification failed: {m}"),
            Self::Local(m) => write!(f, "{m}"),
        }
    }
}

/// A failed step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {cause}")]
pub struct Error {
    /// The step.
    pub step: Step,
    /// Why.
    pub cause: Cause,
}

impl Error {
    /// A failure of `step`.
    pub fn new(step: Step, cause: Cause) -> Self {
        Self { step, cause }
    }

    /// A transport failure of `step`, with every cause in the chain (reqwest's own message
    /// names only the URL; the reason — refused, reset, TLS — is in its sources).
    pub(crate) fn network(step: Step, e: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(step, Cause::Network(message))
    }

    /// A local failure (configuration, files, keys) during `step`.
    pub fn local(step: Step, message: impl fmt::Display) -> Self {
        Self::new(step, Cause::Local(message.to_string()))
    }

    /// A nonsensical response during `step`.
    pub fn protocol(step: Step, message: impl fmt::Display) -> Self {
        Self::new(step, Cause::Protocol(message.to_string()))
    }
}
