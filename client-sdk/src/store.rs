//! An enrollment kept in a directory of the user's own (0700; one that another user owns, or
//! that others can enter and already holds files, is refused): `account-key.der` and
//! `credential-key.der` (PKCS#8, 0600), `chain.pem`, and `enrollment.json` (account URL,
//! algorithm, device, identity — no secrets). Read back for `show` and for renewal.

use std::path::Path;

use io_kit::files::{private_dir, read_private, read_public, write_private, write_public};
use proto::secret::SecretBytes;
use serde::{Deserialize, Serialize};

use crate::authz::Device;
use crate::config::KeyAlgorithm;
use crate::enroll::{Enrolled, Previous};

const ACCOUNT_KEY: &str = "account-key.der";
const CREDENTIAL_KEY: &str = "credential-key.der";
const CHAIN: &str = "chain.pem";
const METADATA: &str = "enrollment.json";

/// The non-secret facts of an enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// ACME account URL.
    pub account_url: String,
    /// `ed25519`, `p256` or `p384`.
    pub algorithm: String,
    /// The device.
    pub device: Device,
    /// Handle URI.
    pub handle: String,
    /// Display name.
    pub name: String,
}

fn algorithm_name(a: KeyAlgorithm) -> &'static str {
    match a {
        KeyAlgorithm::Ed25519 => "ed25519",
        KeyAlgorithm::P256 => "p256",
        KeyAlgorithm::P384 => "p384",
    }
}

/// Writes an enrollment to `dir` (created if needed); keys owner-only.
pub fn save(dir: &Path, enrolled: &Enrolled) -> Result<(), String> {
    private_dir(dir).map_err(|e| e.to_string())?;
    let metadata = Metadata {
        account_url: enrolled.account_url.clone(),
        algorithm: algorithm_name(enrolled.algorithm).into(),
        device: enrolled.device.clone(),
        handle: enrolled.identity.handle().to_uri(),
        name: enrolled.identity.name().to_owned(),
    };
    let json = serde_json::to_vec_pretty(&metadata).map_err(|e| e.to_string())?;
    write_private(&dir.join(ACCOUNT_KEY), enrolled.account_key.expose())
        .map_err(|e| e.to_string())?;
    write_private(&dir.join(CREDENTIAL_KEY), enrolled.credential_key.expose())
        .map_err(|e| e.to_string())?;
    write_public(&dir.join(CHAIN), enrolled.chain_pem.as_bytes()).map_err(|e| e.to_string())?;
    write_public(&dir.join(METADATA), &json).map_err(|e| e.to_string())
}

/// The metadata and chain of a stored enrollment.
pub fn load(dir: &Path) -> Result<(Metadata, String), String> {
    let json = read_public(&dir.join(METADATA)).map_err(|e| e.to_string())?;
    let metadata: Metadata =
        serde_json::from_slice(&json).map_err(|e| format!("{METADATA}: {e}"))?;
    let chain = read_public(&dir.join(CHAIN)).map_err(|e| e.to_string())?;
    let chain = String::from_utf8(chain).map_err(|_| format!("{CHAIN} is not text"))?;
    Ok((metadata, chain))
}

/// What renewal needs from a stored enrollment.
pub fn previous(dir: &Path) -> Result<Previous, String> {
    let (metadata, _) = load(dir)?;
    let algorithm = KeyAlgorithm::parse(&metadata.algorithm)
        .ok_or_else(|| format!("unknown algorithm {:?}", metadata.algorithm))?;
    let key = read_private(&dir.join(ACCOUNT_KEY)).map_err(|e| e.to_string())?;
    Ok(Previous {
        account_key: SecretBytes::new(key),
        algorithm,
        device: metadata.device,
    })
}
