//! The token signing key on disk: generated once, written with mode 0600, reused across
//! restarts. (Private-file handling and the dev TLS PKI are in [`server_kit`].)

use std::path::Path;

use proto::jws::{Algorithm, SigningKey};

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
