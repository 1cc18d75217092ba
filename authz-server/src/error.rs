//! The one error type of the authorization server and the one place that turns each error into
//! its wire form: OAuth error JSON (RFC 6749 §5.2, RFC 9449 §7.1), `WWW-Authenticate`
//! challenges (RFC 6750 §3, RFC 9449 §7.1), or Wire's `{code, label, message}` for the device
//! endpoints. Proof failures map to Wire labels in [`wire_proof_label`], an exhaustive match.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which authentication scheme a `WWW-Authenticate` challenge names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750.
    Bearer,
    /// RFC 9449.
    Dpop,
}

/// Everything that can go wrong while serving a request or running an operator command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An OAuth endpoint refuses the request (`invalid_request`, `invalid_grant`, ...).
    #[error("{code}: {description}")]
    OAuth {
        code: &'static str,
        description: String,
    },
    /// Client authentication failed at the token endpoint (RFC 6749 §5.2 → 401).
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    /// A DPoP proof at an OAuth endpoint fails a check (RFC 9449 `invalid_dpop_proof`).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(proto::Error),
    /// The DPoP proof lacks a current server nonce (RFC 9449 §8 at the token endpoint, §9 at
    /// resources); the response carries a fresh `DPoP-Nonce`.
    #[error("use_dpop_nonce")]
    UseDpopNonce {
        /// At a resource (401 + `WWW-Authenticate`) rather than the token endpoint (400).
        resource: bool,
    },
    /// The presented access token is missing, malformed, expired, revoked or misused.
    #[error("invalid token: {description}")]
    InvalidToken { description: String, scheme: Scheme },
    /// The access token is valid but does not allow this request: it lacks `scope`, or was
    /// issued to a client the endpoint does not serve (RFC 6750 §3.1 `insufficient_scope`, 403).
    #[error("insufficient scope: {description}")]
    InsufficientScope {
        /// The scope the endpoint requires (named in the challenge).
        scope: String,
        /// What is missing.
        description: String,
        /// The Wire label of the refusal.
        label: &'static str,
        /// The scheme the token was presented with.
        scheme: Scheme,
    },
    /// The Wire access-token endpoint refuses the device's proof.
    #[error("client token: {0}")]
    WireProof(proto::Error),
    /// The backend nonce in the proof is unknown, used, expired or bound to another device.
    #[error("the backend nonce is not acceptable")]
    WireBadNonce,
    /// A device endpoint refuses the request for a reason that is not about the proof.
    #[error("{label}: {message}")]
    Wire {
        status: StatusCode,
        label: &'static str,
        message: String,
    },
    /// A login through an upstream identity provider failed (refused there, unreachable, a
    /// bad answer or ID token, no account for the identity); `error` is the RFC 6749
    /// §4.1.2.1 code the client is redirected with.
    #[error("{error}: {description}")]
    Upstream {
        error: &'static str,
        description: String,
    },
    /// A password login where `local_login = false`: users log in through upstreams only.
    #[error("password login is switched off")]
    PasswordLoginOff,
    /// A login attempt failed (shown on the login page).
    #[error("invalid credentials")]
    BadCredentials,
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Configuration or key material is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// An unexpected internal failure (signing).
    #[error("internal: {0}")]
    Internal(String),
    /// Over a rate limit: 429 with `Retry-After`.
    #[error("rate limited: {description}")]
    RateLimited {
        /// Which limit.
        description: String,
        /// Seconds until a request would pass.
        retry_after_secs: u64,
    },
    /// A service this request depends on (a remote verifier, a permission source, a trusted
    /// issuer's keys) did not answer in time, could not be reached or answered unusably: 503
    /// `temporarily_unavailable` with `Retry-After`, nothing issued or consumed (see
    /// docs/rfc-divergences.md: RFC 6749 names the code only for `/authorize`).
    #[error("temporarily unavailable: {description}")]
    Unavailable {
        /// What failed.
        description: String,
        /// Seconds after which a retry may succeed.
        retry_after_secs: u64,
    },
    /// A request refused by a server limit (413 body too large, 408 too slow).
    #[error("{0}")]
    Refused(server_kit::limits::Refusal),
}

/// A failed fetch of an upstream's document (or a permission source's answer), remembered by
/// a [`server_kit::flight::Flight`]: later callers hear `temporarily_unavailable` with when it
/// is tried again.
impl server_kit::flight::Remembered for Error {
    fn description(&self) -> String {
        match self {
            Error::Upstream { description, .. } => description.clone(),
            other => other.to_string(),
        }
    }

    fn remembered(description: String, retry_in_secs: u64) -> Self {
        if retry_in_secs == 0 {
            return Error::upstream_unavailable(description);
        }
        Error::upstream_unavailable(format!(
            "{description} (it failed moments ago; it is tried again in {retry_in_secs} s)"
        ))
    }
}

/// What a password login hears when `local_login = false`.
pub const PASSWORD_LOGIN_OFF: &str =
    "password login is switched off here; sign in through an identity provider";

/// Answers a limit's refusal as OAuth error JSON (`invalid_request`) with the limit's status.
pub fn render_refusal(refusal: server_kit::limits::Refusal) -> Response {
    Error::Refused(refusal).into_response()
}

impl Error {
    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::OAuth {
            code: "invalid_request",
            description: description.into(),
        }
    }

    /// `invalid_grant` with a description.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::OAuth {
            code: "invalid_grant",
            description: description.into(),
        }
    }

    /// `unauthorized_client` with a description.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::OAuth {
            code: "unauthorized_client",
            description: description.into(),
        }
    }

    /// A failed upstream login the client hears about as `access_denied`.
    pub fn upstream_denied(description: impl Into<String>) -> Self {
        Self::Upstream {
            error: "access_denied",
            description: description.into(),
        }
    }

    /// An upstream that could not be reached or answered unusably
    /// (`temporarily_unavailable`).
    pub fn upstream_unavailable(description: impl Into<String>) -> Self {
        Self::Upstream {
            error: "temporarily_unavailable",
            description: description.into(),
        }
    }

    /// The RFC 6749 §4.1.2.1 error code and description this error is sent to a client's
    /// `redirect_uri` with, when a login at `/authorize` ends in it; internal failures say no
    /// more than `server_error`.
    pub fn authorization_error(&self) -> (&'static str, String) {
        match self {
            Error::Upstream { error, description } => (error, description.clone()),
            Error::OAuth { code, description } => (code, description.clone()),
            Error::BadCredentials => ("access_denied", "invalid credentials".into()),
            Error::PasswordLoginOff => ("access_denied", PASSWORD_LOGIN_OFF.into()),
            Error::RateLimited { description, .. } | Error::Unavailable { description, .. } => {
                ("temporarily_unavailable", description.clone())
            }
            other => {
                tracing::error!(error = %other, "authorization failed");
                ("server_error", "internal error".into())
            }
        }
    }

    /// A Wire-style not-found.
    pub fn not_found(label: &'static str, message: impl Into<String>) -> Self {
        Self::Wire {
            status: StatusCode::NOT_FOUND,
            label,
            message: message.into(),
        }
    }

    /// A missing or unusable bearer credential.
    pub fn invalid_token(description: impl Into<String>, scheme: Scheme) -> Self {
        Self::InvalidToken {
            description: description.into(),
            scheme,
        }
    }
}

impl From<server_kit::Error> for Error {
    fn from(e: server_kit::Error) -> Self {
        match e {
            server_kit::Error::Storage(m) => Self::Storage(m),
            server_kit::Error::Unavailable(m) => {
                tracing::warn!(error = %m, "the store is unavailable");
                Self::Unavailable {
                    description: "storage is unavailable for a moment; retry shortly".into(),
                    retry_after_secs: 1,
                }
            }
            server_kit::Error::Config(m) => Self::Config(m),
            server_kit::Error::Server(m) | server_kit::Error::Fetch(m) => Self::Internal(m),
        }
    }
}

impl From<proto::Error> for Error {
    fn from(e: proto::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

/// Wire's label (and HTTP status) for each way a client's DPoP proof can fail at
/// `POST /clients/{device}/access-token`. Labels follow wire-server's `certEnrollmentError`.
pub fn wire_proof_label(e: &proto::Error) -> (StatusCode, &'static str) {
    use proto::Error as P;
    let bad = StatusCode::BAD_REQUEST;
    match e {
        P::MissingDpopHeader => (bad, "missing-dpop-header"),
        P::MultipleDpopHeaders
        | P::Base64 { .. }
        | P::MalformedJws(_)
        | P::MalformedClaims(_)
        | P::CriticalHeader
        | P::InvalidClaim(_)
        | P::InvalidUri(_) => (bad, "client-token-parse-error"),
        P::WrongTyp { .. } => (bad, "client-token-type-error"),
        P::UnsupportedAlgorithm(_) | P::AlgorithmKeyMismatch => {
            (bad, "client-token-unsupported-alg")
        }
        P::MissingJwk
        | P::InvalidJwk(_)
        | P::PrivateKeyInJwk(_)
        | P::BadSignature
        | P::UnknownSigningKey => (bad, "client-token-bad-signature"),
        P::MissingClaim("jti") => (bad, "client-token-jti-missing"),
        P::MissingClaim("chal") => (bad, "client-token-chal-missing"),
        P::MissingClaim("iat") => (bad, "client-token-iat-missing"),
        P::MissingClaim("exp") => (bad, "client-token-exp-missing"),
        P::MissingClaim(_) => (bad, "client-token-parse-error"),
        P::HtmMismatch => (bad, "client-token-bad-method"),
        P::HtuMismatch => (bad, "client-token-bad-uri"),
        P::MissingNonce | P::NonceMismatch => (bad, "client-token-bad-nonce"),
        P::IatInFuture | P::IatTooOld => (bad, "client-token-bad-iat"),
        P::NotYetValid => (bad, "not-yet-valid"),
        P::Expired => (bad, "client-token-exp-too-small"),
        P::ExpTooFar => (bad, "client-token-exp-too-large"),
        P::MissingAth | P::AthMismatch => (bad, "client-token-parse-error"),
        P::ChalMismatch => (bad, "dpop-challenge-mismatch"),
        P::SubMismatch | P::ClientIdMismatch => (bad, "client-token-bad-client-id"),
        P::InvalidClientId(_) => (bad, "client-token-id-parse-error"),
        P::HandleMismatch | P::InvalidHandle(_) => (bad, "dpop-handle-mismatch"),
        P::TeamMismatch => (bad, "dpop-team-mismatch"),
        P::NameMismatch => (bad, "dpop-display-name-mismatch"),
        P::AudMismatch => (bad, "client-token-bad-aud"),
        P::InvalidIdentifier(_) => (bad, "client-token-parse-error"),
        P::IssMismatch => (bad, "dpop-htu-mismatch"),
        P::CnfMismatch | P::ProofKeyMismatch => {
            (StatusCode::FORBIDDEN, "client-token-key-mismatch")
        }
        P::ScopeMismatch => (bad, "unsupported-scope"),
        P::UnsupportedApiVersion => (bad, "unsupported-api-version"),
        P::KeyAuthMismatch | P::AcmeAudMismatch => (bad, "client-token-parse-error"),
        // Visa checks: never run on a device's proof.
        P::MissingJku | P::UntrustedJku | P::UntrustedVisaIssuer | P::InvalidVisa(_) => {
            (bad, "client-token-parse-error")
        }
        P::Key(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal-error"),
        P::EmbeddedProof(inner) => wire_proof_label(inner),
    }
}

fn wire_body(status: StatusCode, label: &str, message: &str) -> Response {
    let body = json!({"code": status.as_u16(), "label": label, "message": message});
    (status, Json(body)).into_response()
}

fn oauth_body(status: StatusCode, code: &str, description: &str) -> Response {
    let body = json!({"error": code, "error_description": description});
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `temporarily_unavailable` with `status` and `Retry-After`.
fn retry_later(status: StatusCode, description: &str, retry_after_secs: u64) -> Response {
    let mut response = oauth_body(status, "temporarily_unavailable", description);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// A `WWW-Authenticate` challenge of `scheme` with these auth-params (values without quotes).
fn challenge(scheme: Scheme, params: &[(&str, &str)]) -> Option<HeaderValue> {
    let mut value = match scheme {
        Scheme::Bearer => "Bearer".to_owned(),
        Scheme::Dpop => "DPoP".to_owned(),
    };
    for (i, (name, v)) in params.iter().enumerate() {
        value.push_str(if i == 0 { " " } else { ", " });
        value.push_str(&format!("{name}=\"{v}\""));
    }
    if scheme == Scheme::Dpop {
        // RFC 9449 §7.1: the algorithms a proof may use here.
        let algs: Vec<&str> = proto::dpop::DpopPolicy::rfc9449()
            .algorithms
            .iter()
            .map(|a| a.name())
            .collect();
        value.push_str(&format!(", algs=\"{}\"", algs.join(" ")));
    }
    HeaderValue::from_str(&value).ok()
}

/// A refusal at a resource in both body shapes (OAuth and Wire) with its challenge.
fn resource_refusal(
    status: StatusCode,
    error: &str,
    label: &str,
    description: &str,
    challenge: Option<HeaderValue>,
) -> Response {
    let body = json!({
        "error": error, "error_description": description,
        "code": status.as_u16(), "label": label, "message": description,
    });
    let mut r = (status, Json(body)).into_response();
    if let Some(v) = challenge {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

impl IntoResponse for Error {
    /// The error's wire form, carrying what it said for the request's log event
    /// ([`server_kit::serve::RefusalReason`]).
    fn into_response(self) -> Response {
        let mut response = self.render();
        response
            .extensions_mut()
            .insert(server_kit::serve::RefusalReason(self.to_string()));
        response
    }
}

impl Error {
    /// The wire form of this error.
    fn render(&self) -> Response {
        match self {
            Error::OAuth { code, description } => {
                oauth_body(StatusCode::BAD_REQUEST, code, description)
            }
            Error::InvalidClient(d) => {
                let mut r = oauth_body(StatusCode::UNAUTHORIZED, "invalid_client", d);
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"token\""),
                );
                r
            }
            Error::UseDpopNonce { resource: false } => oauth_body(
                StatusCode::BAD_REQUEST,
                "use_dpop_nonce",
                "use the DPoP-Nonce of this response in the proof",
            ),
            Error::UseDpopNonce { resource: true } => {
                let mut r = oauth_body(
                    StatusCode::UNAUTHORIZED,
                    "use_dpop_nonce",
                    "use the DPoP-Nonce of this response in the proof",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "DPoP error=\"use_dpop_nonce\", error_description=\"Resource server requires nonce in DPoP proof\"",
                    ),
                );
                r
            }
            Error::InvalidDpopProof(e) => oauth_body(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                &e.to_string(),
            ),
            Error::InvalidToken {
                description,
                scheme,
            } => resource_refusal(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "invalid-credentials",
                description,
                challenge(*scheme, &[("error", "invalid_token")]),
            ),
            Error::InsufficientScope {
                scope,
                description,
                label,
                scheme,
            } => resource_refusal(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                label,
                description,
                challenge(
                    *scheme,
                    &[("error", "insufficient_scope"), ("scope", scope.as_str())],
                ),
            ),
            Error::WireProof(e) => {
                let (status, label) = wire_proof_label(e);
                wire_body(status, label, &e.to_string())
            }
            Error::WireBadNonce => wire_body(
                StatusCode::BAD_REQUEST,
                "client-token-bad-nonce",
                "The client sent an unacceptable anti-replay nonce",
            ),
            Error::Wire {
                status,
                label,
                message,
            } => wire_body(*status, label, message),
            Error::Upstream { error, description } => {
                oauth_body(StatusCode::BAD_GATEWAY, error, description)
            }
            Error::PasswordLoginOff => {
                oauth_body(StatusCode::FORBIDDEN, "access_denied", PASSWORD_LOGIN_OFF)
            }
            Error::BadCredentials => oauth_body(
                StatusCode::UNAUTHORIZED,
                "access_denied",
                "invalid credentials",
            ),
            Error::RateLimited {
                description,
                retry_after_secs,
            } => retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                description,
                *retry_after_secs,
            ),
            Error::Unavailable {
                description,
                retry_after_secs,
            } => retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                description,
                *retry_after_secs,
            ),
            Error::Refused(refusal) => {
                oauth_body(refusal.status(), "invalid_request", &refusal.to_string())
            }
            Error::Storage(_) | Error::Config(_) | Error::Internal(_) => {
                tracing::error!(error = %self, "internal error");
                oauth_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error",
                )
            }
        }
    }
}
