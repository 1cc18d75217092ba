//! The one error type of the ACME server, for every part of it: what went wrong, classified by
//! the RFC 8555 §6.7 problem type ([`ProblemType`]) the client is shown, with the identifiers at
//! fault. Protocol failures reported by `proto` are classified once, in the exhaustive
//! [`fault`], and mapped to problem types by [`jws_problem`] and [`challenge_problem`];
//! [`status_name`] is how a status is named in a detail.
//!
//! The validation, certificate and storage authorities only construct errors. An error becomes
//! a problem document in one place, [`Error::to_problem`]: the web front end answers with it
//! (`wfe::problem` adds the headers some problems carry), and the registration authority records
//! it on the challenges and orders a refusal invalidated.

use axum::http::StatusCode;
use proto::acme::{ERROR_NS, Problem, Subproblem};

use crate::model::Identifier;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The ACME error types this server emits (RFC 8555 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// The request names an account that does not exist.
    AccountDoesNotExist,
    /// The certificate is already revoked.
    AlreadyRevoked,
    /// The certificate named by `replaces` was already replaced (RFC 9773 §7.4).
    AlreadyReplaced,
    /// The revocation reason is not allowed.
    BadRevocationReason,
    /// The validation server could not be reached.
    Connection,
    /// A DNS lookup during validation failed.
    Dns,
    /// The TLS handshake of a tls-alpn-01 validation failed.
    Tls,
    /// The CSR is unacceptable.
    BadCsr,
    /// The anti-replay nonce is unknown, used or expired.
    BadNonce,
    /// The JWS key is unacceptable.
    BadPublicKey,
    /// The JWS algorithm is not supported.
    BadSignatureAlgorithm,
    /// newAccount needs an External Account Binding.
    ExternalAccountRequired,
    /// The challenge answer did not satisfy the challenge.
    IncorrectResponse,
    /// newOrder names a profile this server does not offer for it.
    InvalidProfile,
    /// The contact URI is unacceptable.
    InvalidContact,
    /// The request is malformed.
    Malformed,
    /// Finalize before the order is ready.
    OrderNotReady,
    /// The server will not issue for this identifier.
    RejectedIdentifier,
    /// Something broke inside the server.
    ServerInternal,
    /// The client lacks authorization.
    Unauthorized,
    /// The contact URI scheme is not supported.
    UnsupportedContact,
    /// The identifier type is not supported.
    UnsupportedIdentifier,
    /// Over a rate limit (429 with `Retry-After`).
    RateLimited,
    /// The client must do something first, here: agree to the terms of service (RFC 8555 §7.3).
    UserActionRequired,
}

impl ProblemType {
    /// The name after `urn:ietf:params:acme:error:`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AccountDoesNotExist => "accountDoesNotExist",
            Self::AlreadyRevoked => "alreadyRevoked",
            Self::AlreadyReplaced => "alreadyReplaced",
            Self::BadRevocationReason => "badRevocationReason",
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::BadCsr => "badCSR",
            Self::BadNonce => "badNonce",
            Self::BadPublicKey => "badPublicKey",
            Self::BadSignatureAlgorithm => "badSignatureAlgorithm",
            Self::ExternalAccountRequired => "externalAccountRequired",
            Self::IncorrectResponse => "incorrectResponse",
            Self::InvalidProfile => "invalidProfile",
            Self::InvalidContact => "invalidContact",
            Self::Malformed => "malformed",
            Self::OrderNotReady => "orderNotReady",
            Self::RejectedIdentifier => "rejectedIdentifier",
            Self::ServerInternal => "serverInternal",
            Self::Unauthorized => "unauthorized",
            Self::UnsupportedContact => "unsupportedContact",
            Self::UnsupportedIdentifier => "unsupportedIdentifier",
            Self::RateLimited => "rateLimited",
            Self::UserActionRequired => "userActionRequired",
        }
    }

    /// The full URN.
    pub fn urn(self) -> String {
        format!("{ERROR_NS}{}", self.name())
    }

    /// The HTTP status of a response carrying this problem.
    pub fn status(self) -> StatusCode {
        match self {
            Self::AccountDoesNotExist | Self::Unauthorized => StatusCode::FORBIDDEN,
            Self::UserActionRequired => StatusCode::FORBIDDEN,
            Self::OrderNotReady => StatusCode::FORBIDDEN,
            Self::AlreadyReplaced => StatusCode::CONFLICT,
            Self::ServerInternal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Everything that can go wrong while serving a request or running an operator command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An ACME problem for the client.
    #[error("{kind:?}: {detail}")]
    Problem {
        /// The problem type.
        kind: ProblemType,
        /// Human-readable explanation.
        detail: String,
        /// Identifiers at fault (a subproblem each).
        identifiers: Vec<Identifier>,
    },
    /// The resource does not exist or belongs to another account (404, `malformed`).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with an existing resource at `location` (409, keyChange to a key
    /// already in use).
    #[error("conflict: {detail}")]
    Conflict {
        /// Explanation.
        detail: String,
        /// The conflicting resource.
        location: String,
    },
    /// The request method is not allowed on this resource (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request is not `application/jose+json` (415).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The store cannot answer for now (its database is down or overloaded): 503
    /// `serverInternal` with `Retry-After`; the detail stays in the log.
    #[error("storage unavailable: {0}")]
    StoreUnavailable(String),
    /// Configuration, key or CA material is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// An unexpected internal failure.
    #[error("internal: {0}")]
    Internal(String),
    /// Over a rate limit: `rateLimited`, 429, `Retry-After`.
    #[error("rate limited: {detail}")]
    RateLimited {
        /// Which limit.
        detail: String,
        /// Seconds until a request would pass.
        retry_after_secs: u64,
    },
    /// A peer a validation depends on (the backend's or the identity provider's keys) could not
    /// be reached or answered unusably: 503 `connection` with `Retry-After`. Nothing about the
    /// challenge changes; the client may answer it again.
    #[error("unavailable: {detail}")]
    Unavailable {
        /// What could not be fetched.
        detail: String,
        /// Seconds after which it is tried again.
        retry_after_secs: u64,
    },
    /// A request refused by a server limit (413 body too large, 408 too slow), as `malformed`.
    #[error("{0}")]
    Refused(server_kit::limits::Refusal),
    /// newAccount without agreement to the advertised terms of service: `userActionRequired`
    /// (403) with `Link: <terms>;rel="terms-of-service"` (RFC 8555 §7.3, §7.3.3).
    #[error("the terms of service {terms} were not agreed to")]
    TermsOfServiceNotAgreed {
        /// The terms' URL (the directory's `meta.termsOfService`).
        terms: String,
    },
}

impl Error {
    /// A problem without subproblems.
    pub fn problem(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self::Problem {
            kind,
            detail: detail.into(),
            identifiers: Vec::new(),
        }
    }

    /// `malformed`.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::problem(ProblemType::Malformed, detail)
    }

    /// `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::problem(ProblemType::Unauthorized, detail)
    }

    /// A problem about one identifier: the top-level type with a subproblem naming it.
    pub fn about_identifier(
        kind: ProblemType,
        identifier: &Identifier,
        detail: impl Into<String>,
    ) -> Self {
        let detail = detail.into();
        Self::about_identifiers(kind, [identifier], &detail)
    }

    /// A problem about several identifiers: the top-level type with a subproblem naming each.
    pub fn about_identifiers<'i>(
        kind: ProblemType,
        identifiers: impl IntoIterator<Item = &'i Identifier>,
        detail: &str,
    ) -> Self {
        Self::Problem {
            kind,
            detail: detail.to_owned(),
            identifiers: identifiers.into_iter().cloned().collect(),
        }
    }

    /// The problem document and status this error is shown as: the one rendering of errors.
    pub fn to_problem(&self) -> (StatusCode, Problem) {
        let (status, kind, detail, subproblems) = match self {
            Self::Problem {
                kind,
                detail,
                identifiers,
            } => (
                kind.status(),
                *kind,
                detail.clone(),
                identifiers
                    .iter()
                    .map(|identifier| Subproblem {
                        kind: kind.urn(),
                        detail: detail.clone(),
                        identifier: Some(identifier.into()),
                    })
                    .collect(),
            ),
            Self::NotFound(what) => (
                StatusCode::NOT_FOUND,
                ProblemType::Malformed,
                format!("{what} not found"),
                Vec::new(),
            ),
            Self::Conflict { detail, .. } => (
                StatusCode::CONFLICT,
                ProblemType::Malformed,
                detail.clone(),
                Vec::new(),
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ProblemType::Malformed,
                "method not allowed; use POST (or POST-as-GET)".into(),
                Vec::new(),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ProblemType::Malformed,
                "Content-Type must be application/jose+json".into(),
                Vec::new(),
            ),
            Self::RateLimited { detail, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                ProblemType::RateLimited,
                detail.clone(),
                Vec::new(),
            ),
            Self::Unavailable { detail, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                ProblemType::Connection,
                detail.clone(),
                Vec::new(),
            ),
            Self::Refused(refusal) => (
                refusal.status(),
                ProblemType::Malformed,
                refusal.to_string(),
                Vec::new(),
            ),
            Self::TermsOfServiceNotAgreed { terms } => (
                ProblemType::UserActionRequired.status(),
                ProblemType::UserActionRequired,
                format!(
                    "creating an account requires agreeing to the terms of service at {terms}: \
                     send \"termsOfServiceAgreed\": true"
                ),
                Vec::new(),
            ),
            Self::StoreUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ProblemType::ServerInternal,
                "the server's storage is unavailable for a moment; retry shortly".into(),
                Vec::new(),
            ),
            // Internal details stay in the log.
            Self::Storage(_) | Self::Config(_) | Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ProblemType::ServerInternal,
                "internal server error".into(),
                Vec::new(),
            ),
        };
        let problem = Problem {
            kind: kind.urn(),
            detail,
            status: Some(status.as_u16()),
            subproblems,
        };
        (status, problem)
    }
}

impl From<server_kit::Error> for Error {
    fn from(e: server_kit::Error) -> Self {
        match e {
            server_kit::Error::Storage(m) => Self::Storage(m),
            server_kit::Error::Unavailable(m) => Self::StoreUnavailable(m),
            server_kit::Error::Config(m) => Self::Config(m),
            server_kit::Error::Server(m) | server_kit::Error::Fetch(m) => Self::Internal(m),
        }
    }
}

/// A failed key fetch remembered by a [`server_kit::flight::Flight`]: the callers after it get
/// [`Error::Unavailable`] at once, with when the peer is tried again.
impl server_kit::flight::Remembered for Error {
    fn description(&self) -> String {
        match self {
            Self::Unavailable { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }

    fn remembered(description: String, retry_in_secs: u64) -> Self {
        Self::Unavailable {
            detail: if retry_in_secs == 0 {
                description
            } else {
                format!(
                    "{description} (it failed moments ago; it is tried again in {retry_in_secs} s)"
                )
            },
            retry_after_secs: retry_in_secs.max(1),
        }
    }
}

/// The name RFC 8555 §7.1.6 gives a status (`"deactivated"`), for problem details; `Debug`
/// would capitalise it.
pub fn status_name(status: impl serde::Serialize) -> String {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "unknown".into(),
    }
}

/// What a `proto` refusal is about; the one exhaustive match over `proto::Error`, from which
/// both problem maps below are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// An algorithm outside the allow-list or not fitting the key.
    Algorithm,
    /// An unusable or missing public key.
    Key,
    /// A missing or wrong anti-replay nonce.
    Nonce,
    /// A token bound to, or a proof signed by, another key.
    Binding,
    /// A token naming another identity (device, handle, name, team).
    Identity,
    /// Anything else: structure, signature, times, audience, challenge, issuer.
    Other,
}

/// Classifies a `proto` error.
pub fn fault(e: &proto::Error) -> Fault {
    use proto::Error as P;
    match e {
        P::UnsupportedAlgorithm(_) | P::AlgorithmKeyMismatch => Fault::Algorithm,
        P::MissingJwk | P::InvalidJwk(_) | P::PrivateKeyInJwk(_) => Fault::Key,
        P::MissingNonce | P::NonceMismatch => Fault::Nonce,
        P::CnfMismatch | P::ProofKeyMismatch => Fault::Binding,
        P::SubMismatch
        | P::HandleMismatch
        | P::TeamMismatch
        | P::NameMismatch
        | P::ClientIdMismatch => Fault::Identity,
        P::EmbeddedProof(inner) => fault(inner),
        P::Base64 { .. }
        | P::MalformedJws(_)
        | P::MalformedClaims(_)
        | P::MissingClaim(_)
        | P::InvalidClaim(_)
        | P::CriticalHeader
        | P::BadSignature
        | P::UnknownSigningKey
        | P::Key(_)
        | P::MissingDpopHeader
        | P::MultipleDpopHeaders
        | P::WrongTyp { .. }
        | P::HtmMismatch
        | P::HtuMismatch
        | P::InvalidUri(_)
        | P::IatInFuture
        | P::IatTooOld
        | P::NotYetValid
        | P::Expired
        | P::ExpTooFar
        | P::MissingAth
        | P::AthMismatch
        | P::ChalMismatch
        | P::AudMismatch
        | P::InvalidClientId(_)
        | P::InvalidHandle(_)
        | P::InvalidIdentifier(_)
        | P::IssMismatch
        | P::ScopeMismatch
        | P::UnsupportedApiVersion
        | P::KeyAuthMismatch
        | P::AcmeAudMismatch
        | P::MissingJku
        | P::UntrustedJku
        | P::UntrustedVisaIssuer
        | P::InvalidVisa(_) => Fault::Other,
    }
}

/// The problem type for a request JWS refused by `proto` (RFC 8555 §6.2, §6.5, §6.7).
pub fn jws_problem(e: &proto::Error) -> ProblemType {
    match fault(e) {
        Fault::Algorithm => ProblemType::BadSignatureAlgorithm,
        Fault::Key => ProblemType::BadPublicKey,
        Fault::Nonce => ProblemType::BadNonce,
        Fault::Binding | Fault::Identity | Fault::Other => ProblemType::Malformed,
    }
}

/// The problem type for a `wire-dpop-01` / `wire-oidc-01` answer refused by `proto`: a token
/// bound to another key is `unauthorized`, one naming another identity is
/// `rejectedIdentifier`, anything else about the token is `incorrectResponse`.
pub fn challenge_problem(e: &proto::Error) -> ProblemType {
    match fault(e) {
        Fault::Binding => ProblemType::Unauthorized,
        Fault::Identity => ProblemType::RejectedIdentifier,
        Fault::Algorithm | Fault::Key | Fault::Nonce | Fault::Other => {
            ProblemType::IncorrectResponse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_carry_urn_status_and_subproblems() {
        let id = Identifier::new(crate::model::IdentifierKind::WireappUser, "{}");
        let (status, p) =
            Error::about_identifier(ProblemType::RejectedIdentifier, &id, "no").to_problem();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(p.kind, "urn:ietf:params:acme:error:rejectedIdentifier");
        assert_eq!(
            p.subproblems[0].identifier.as_ref(),
            Some(&proto::acme::Identifier::from(&id))
        );
        assert_eq!(p.subproblems[0].kind, p.kind);
        assert_eq!(p.subproblems[0].detail, "no");
        let (status, p) = Error::Storage("disk on fire at /secret/path".into()).to_problem();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!p.detail.contains("/secret"));
        assert_eq!(
            challenge_problem(&proto::Error::EmbeddedProof(Box::new(
                proto::Error::HandleMismatch
            ))),
            ProblemType::RejectedIdentifier
        );
    }
}
