//! The steps of an enrollment (DESIGN §4), and the [`Observer`] an application implements to
//! show progress: every step reports its start and its outcome with its duration.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// One step of the enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Fetch the ACME directory.
    Directory,
    /// Log in at the authz-server (authorization code + PKCE).
    Login,
    /// Register the device (or reuse the stored one).
    RegisterDevice,
    /// Create (or find) the ACME account.
    Account,
    /// Create the identity order.
    Order,
    /// Read the two authorizations.
    Authorizations,
    /// Get a backend nonce.
    BackendNonce,
    /// Exchange a DPoP proof for the backend's access token.
    AccessToken,
    /// Answer `wire-dpop-01`.
    DpopChallenge,
    /// Log in again for an ID token carrying the key authorization.
    IdToken,
    /// Answer `wire-oidc-01`.
    OidcChallenge,
    /// Send the CSR.
    Finalize,
    /// Download the chain.
    Download,
    /// Verify the chain and the certified identity.
    Verify,
    /// After a failure: remove the device this enrollment registered, so that a failed
    /// enrollment does not use up one of the user's device slots.
    RemoveDevice,
}

impl Step {
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Login => "login",
            Self::RegisterDevice => "register-device",
            Self::Account => "acme-account",
            Self::Order => "acme-order",
            Self::Authorizations => "authorizations",
            Self::BackendNonce => "backend-nonce",
            Self::AccessToken => "access-token",
            Self::DpopChallenge => "wire-dpop-01",
            Self::IdToken => "id-token",
            Self::OidcChallenge => "wire-oidc-01",
            Self::Finalize => "finalize",
            Self::Download => "download",
            Self::Verify => "verify",
            Self::RemoveDevice => "remove-device",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Progress reporting.
pub trait Observer: Send + Sync {
    /// `step` begins.
    fn started(&self, _step: Step) {}
    /// `step` ended after `elapsed`; `detail` says what it produced (never a secret).
    fn finished(&self, _step: Step, _elapsed: Duration, _outcome: Result<&str, &Error>) {}
}

/// An observer that reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

/// Prints one line per finished step: outcome, name, duration, and what it produced or why it
/// failed. To standard output, or to standard error when standard output carries JSON.
#[derive(Debug, Clone, Copy)]
pub struct StepPrinter {
    to_stderr: bool,
}

impl StepPrinter {
    /// Lines on standard output.
    pub fn stdout() -> Self {
        Self { to_stderr: false }
    }

    /// Lines on standard error.
    pub fn stderr() -> Self {
        Self { to_stderr: true }
    }

    /// The line for a finished step.
    pub fn line(step: Step, elapsed: Duration, outcome: Result<&str, &Error>) -> String {
        let ms = elapsed.as_secs_f64() * 1e3;
        match outcome {
            Ok(detail) => format!("  ok    {:<16} {ms:>8.1} ms  {detail}", step.name()),
            Err(e) => format!("  FAIL  {:<16} {ms:>8.1} ms  {}", step.name(), e.cause),
        }
    }
}

impl Observer for StepPrinter {
    fn finished(&self, step: Step, elapsed: Duration, outcome: Result<&str, &Error>) {
        use std::io::Write;
        let line = Self::line(step, elapsed, outcome);
        // A closed pipe must not abort an enrollment.
        let _ = if self.to_stderr {
            writeln!(std::io::stderr(), "{line}")
        } else {
            writeln!(std::io::stdout(), "{line}")
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Cause;

    #[test]
    fn step_lines_name_the_step_its_time_and_outcome() {
        let ok = StepPrinter::line(Step::Finalize, Duration::from_micros(1500), Ok("valid"));
        assert!(
            ok.contains("ok")
                && ok.contains("finalize")
                && ok.contains("1.5 ms")
                && ok.ends_with("valid")
        );
        let e = Error::new(Step::Login, Cause::Timeout);
        let fail = StepPrinter::line(Step::Login, Duration::from_secs(30), Err(&e));
        assert!(fail.contains("FAIL") && fail.contains("login") && fail.ends_with("timed out"));
    }
}
