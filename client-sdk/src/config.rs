//! What an enrollment needs to know: where the servers are, what to trust, how the user logs
//! in, where the ID token of `wire-oidc-01` comes from, which key algorithm to use, and how long
//! a step may take.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::jws::Algorithm;
use proto::secret::SecretString;

use crate::id_provider::IdTokenProvider;
use crate::login::AuthorizationUi;

/// Key algorithms for the account and credential keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// Ed25519 (Wire's default).
    #[default]
    Ed25519,
    /// ECDSA P-256.
    P256,
    /// ECDSA P-384.
    P384,
}

impl KeyAlgorithm {
    /// The JOSE algorithm of the ACME account key.
    pub fn jose(self) -> Algorithm {
        match self {
            Self::Ed25519 => Algorithm::EdDsa,
            Self::P256 => Algorithm::Es256,
            Self::P384 => Algorithm::Es384,
        }
    }

    /// The certificate signature algorithm of the credential key.
    pub fn x509(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::Ed25519 => &rcgen::PKCS_ED25519,
            Self::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }

    /// Parses `ed25519`, `p256`, `p384`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "ed25519" => Some(Self::Ed25519),
            "p256" | "p-256" | "es256" => Some(Self::P256),
            "p384" | "p-384" | "es384" => Some(Self::P384),
            _ => None,
        }
    }
}

/// How the user logs in at the authz-server.
#[derive(Clone)]
pub enum Login {
    /// Headless devices and CI: the credentials are posted to `/authorize` with the PKCE
    /// challenge, and the code is taken from the redirect.
    Password {
        /// The user's handle.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// Desktops and custom UIs: the application shows the authorization URL and returns the
    /// redirect (RFC 8252 loopback, see [`crate::login::LoopbackBrowser`]).
    Interactive(Arc<dyn AuthorizationUi>),
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .finish_non_exhaustive(),
            Self::Interactive(_) => f.write_str("Interactive"),
        }
    }
}

/// The scope a login asks for by default: the user's identity for the ID token, and
/// `wire_devices`, the authz-server's default device scope, for registering the device and
/// getting its Wire access token.
pub const DEFAULT_SCOPE: &str = "openid profile wire_devices";

/// The enrollment configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The ACME directory URL.
    pub acme_directory: String,
    /// The authz-server base URL (issuer).
    pub authz_url: String,
    /// PEM root certificates trusted for HTTPS to both servers.
    pub tls_roots: Vec<PathBuf>,
    /// The identity CA's root certificate (PEM), which the issued chain must lead to.
    pub ca_root: PathBuf,
    /// The OAuth client id of the device application.
    pub oauth_client_id: String,
    /// The redirect URI registered for that client (for [`Login::Password`]).
    pub redirect_uri: String,
    /// The scope the login asks for: the identity scopes and the scope the authz-server's
    /// device endpoints require (its `device_access.scope`).
    pub scope: String,
    /// How the user logs in.
    pub login: Login,
    /// Where the ID token for `wire-oidc-01` comes from: `None` (the default) logs in at the
    /// authz-server again with the `claims` request; a third-party OpenID Provider (the
    /// organisation's identity provider, the ACME server's `wire_oidc.issuer`) otherwise.
    pub id_token_provider: Option<IdTokenProvider>,
    /// Account and credential key algorithm.
    pub algorithm: KeyAlgorithm,
    /// Longest time one step may take.
    pub step_timeout: Duration,
    /// How often a `badNonce` is retried with the fresh nonce before giving up.
    pub nonce_retries: u32,
    /// Seconds of clock difference between this device and the servers tolerated when the
    /// issued certificate's validity is checked (the ACME server backdates `notBefore` at least
    /// as far by default).
    pub clock_skew: i64,
}

/// The clock difference tolerated by default, in seconds: the servers' default for Wire proofs.
pub const DEFAULT_CLOCK_SKEW: i64 = proto::dpop::DEFAULT_WIRE_SKEW;

impl Config {
    /// A configuration with defaults: the `wireapp` client asking for `openid profile
    /// wire_devices`, Ed25519, 30 s per step, 3 nonce retries.
    pub fn new(
        acme_directory: impl Into<String>,
        authz_url: impl Into<String>,
        ca_root: impl Into<PathBuf>,
        login: Login,
    ) -> Self {
        Self {
            acme_directory: acme_directory.into(),
            authz_url: authz_url.into().trim_end_matches('/').to_owned(),
            tls_roots: Vec::new(),
            ca_root: ca_root.into(),
            oauth_client_id: "wireapp".into(),
            redirect_uri: "http://127.0.0.1/callback".into(),
            scope: DEFAULT_SCOPE.into(),
            login,
            id_token_provider: None,
            algorithm: KeyAlgorithm::default(),
            step_timeout: Duration::from_secs(30),
            nonce_retries: 3,
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }
}
