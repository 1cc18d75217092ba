//! The token signing key on disk: generated once, written with mode 0600, reused across
//! restarts, and rotated by the operator (`authz-server keys rotate`): the old key moves to
//! `retired/` with the time its last token expires, and stays published in the JWKS (and
//! accepted by this server) until then. (Private-file handling and the dev TLS PKI are in
//! [`server_kit`].)

use std::path::Path;

use proto::clock::UnixTime;
use proto::jwk::Jwk;
use proto::jws::{Algorithm, SigningKey};
use serde::{Deserialize, Serialize};

use server_kit::files::{create_dir, read_private, write_private};

use crate::error::{Error, Result};

/// Loads the signing key from `dir/signing-key.der`, creating it on first start. Its `kid` is
/// its RFC 7638 thumbprint, so a rotated key gets a new `kid` by construction.
pub fn load_or_create_signing_key(dir: &Path) -> Result<SigningKey> {
    create_dir(dir)?;
    let path = dir.join("signing-key.der");
    let key = if path.exists() {
        SigningKey::from_pkcs8_der(Algorithm::Es256, &read_private(&path)?)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
    } else {
        let key =
            SigningKey::generate(Algorithm::Es256).map_err(|e| Error::Config(e.to_string()))?;
        write_private(&path, key.pkcs8_der().expose())?;
        key
    };
    let kid = key.public_jwk().thumbprint();
    Ok(key.with_kid(kid))
}

/// A retired key's public half and when its last token expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Retired {
    jwk: serde_json::Value,
    retire_after: UnixTime,
}

/// Retires the current key (kept for verification until `retire_after`) and creates a new one.
/// Run while the server is stopped. Returns the new key's `kid`.
pub fn rotate(dir: &Path, retire_after: UnixTime) -> Result<String> {
    let current = load_or_create_signing_key(dir)?;
    let retired_dir = dir.join("retired");
    create_dir(&retired_dir)?;
    let kid = current.public_jwk().kid.clone().unwrap_or_default();
    let record = Retired {
        jwk: current.public_jwk().to_json(),
        retire_after,
    };
    let json = serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?;
    server_kit::files::write_public(&retired_dir.join(format!("{kid}.json")), &json)?;
    let next = SigningKey::generate(Algorithm::Es256).map_err(|e| Error::Config(e.to_string()))?;
    write_private(&dir.join("signing-key.der"), next.pkcs8_der().expose())?;
    Ok(next.public_jwk().thumbprint())
}

/// The public keys of retired signing keys whose tokens may still be alive at `now`, with the
/// time their last token expires.
pub fn retired_keys(dir: &Path, now: UnixTime) -> Result<Vec<(Jwk, UnixTime)>> {
    let retired_dir = dir.join("retired");
    let Ok(entries) = std::fs::read_dir(&retired_dir) else {
        return Ok(Vec::new());
    };
    let mut keys = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = server_kit::files::read_public(&path)?;
        let record: Retired = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        if record.retire_after >= now {
            keys.push((
                Jwk::from_json(&record.jwk)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?,
                record.retire_after,
            ));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn signing_key_is_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_signing_key(dir.path()).unwrap();
        let b = load_or_create_signing_key(dir.path()).unwrap();
        assert!(a.public_jwk().same_key(b.public_jwk()));
        assert_eq!(a.public_jwk().kid, b.public_jwk().kid);
        let mode = fs::metadata(dir.path().join("signing-key.der"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn rotation_keeps_the_old_key_until_its_tokens_expire() {
        let dir = tempfile::tempdir().unwrap();
        let old = load_or_create_signing_key(dir.path()).unwrap();
        let new_kid = rotate(dir.path(), 1000).unwrap();
        let new = load_or_create_signing_key(dir.path()).unwrap();
        assert_eq!(new.public_jwk().kid.as_deref(), Some(new_kid.as_str()));
        assert!(!new.public_jwk().same_key(old.public_jwk()));
        let retired = retired_keys(dir.path(), 1000).unwrap();
        assert_eq!(retired.len(), 1);
        assert!(retired[0].0.same_key(old.public_jwk()));
        assert_eq!(retired[0].0.kid, old.public_jwk().kid);
        assert!(retired_keys(dir.path(), 1001).unwrap().is_empty());
    }

    #[test]
    fn world_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_signing_key(dir.path()).unwrap();
        let path = dir.path().join("signing-key.der");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create_signing_key(dir.path()),
            Err(Error::Config(_))
        ));
    }
}
