//! Login through a remote verifier (`[[remote_auth]]`): a service of the operator's that
//! knows whether a user proved itself there — Minecraft's session server is the model: the
//! game client joins a server under a one-time hash, and `hasJoined?username=…&serverId=…`
//! answers the user's id and name, or 204 when it did not. A client allowed for a verifier
//! presents the verifier's parameters at `/token` under the verifier's own grant type
//! ([`crate::grants`]); the verifier is asked ([`verifier`]) and its answer becomes an identity
//! linked to a local account like an upstream's ([`crate::federation::accounts`]), under the
//! verifier's id as issuer.
//!
//! [`RemoteVerifiers`] holds each configured verifier ([`config`]) with its HTTPS client (the
//! configured trust anchors, its timeout).

pub mod config;
pub mod verifier;

pub use config::{Method, RemoteAuthConfig};

use crate::error::{Error, Result};
use crate::federation::ClaimMap;
use crate::federation::accounts::IdentitySource;

/// One configured verifier, ready to ask.
#[derive(Debug)]
pub struct RemoteVerifier {
    /// Its configuration.
    pub config: RemoteAuthConfig,
    http: reqwest::Client,
    /// How the identity this verifier gives reads (see [`verifier`]).
    claims: ClaimMap,
}

impl RemoteVerifier {
    /// Builds the HTTPS client of a validated verifier.
    fn load(config: RemoteAuthConfig) -> Result<Self> {
        let http = server_kit::tls::https_client_trusting(
            &config.trust_anchors,
            config.trust_system_roots,
            std::time::Duration::from_millis(config.timeout_ms),
        )
        .map_err(|e| Error::Config(format!("remote_auth {:?}: trust_anchors: {e}", config.id)))?;
        Ok(Self {
            config,
            http,
            claims: verifier::claim_map(),
        })
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// This verifier as a source of identities: linked under its id.
    pub fn source(&self) -> IdentitySource<'_> {
        IdentitySource {
            id: &self.config.id,
            issuer: &self.config.id,
            display_name: self.config.name(),
            claims: &self.claims,
            first_login: self.config.first_login,
        }
    }
}

/// The configured verifiers, in configuration order.
#[derive(Debug, Default)]
pub struct RemoteVerifiers {
    list: Vec<RemoteVerifier>,
}

impl RemoteVerifiers {
    /// Loads every configured verifier (already validated by [`crate::Config::validate`]).
    pub fn load(configs: &[RemoteAuthConfig]) -> Result<Self> {
        let list = configs
            .iter()
            .cloned()
            .map(RemoteVerifier::load)
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { list })
    }

    /// The verifier clients use with `grant_type`.
    pub fn by_grant_type(&self, grant_type: &str) -> Option<&RemoteVerifier> {
        self.list.iter().find(|v| v.config.grant_type == grant_type)
    }

    /// The grant types of the verifiers.
    pub fn grant_types(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|v| v.config.grant_type.as_str())
    }
}

/// Checks every verifier and that no two share an id or a grant type.
pub fn validate_all(verifiers: &[RemoteAuthConfig]) -> Result<()> {
    for (i, verifier) in verifiers.iter().enumerate() {
        verifier.validate()?;
        let earlier = &verifiers[..i];
        if let Some(other) = earlier
            .iter()
            .find(|v| v.id == verifier.id || v.grant_type == verifier.grant_type)
        {
            return Err(Error::Config(format!(
                "remote_auth {:?} and {:?} share an id or a grant_type",
                other.id, verifier.id
            )));
        }
    }
    Ok(())
}
