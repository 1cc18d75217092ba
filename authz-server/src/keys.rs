//! Key material on disk: the token signing key and, in dev mode, a small TLS PKI (a root CA and
//! a server certificate for the loopback names). Everything is generated once and reused across
//! restarts; private keys are written with mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use proto::jws::{Algorithm, SigningKey};

use crate::error::{Error, Result};

/// Writes a file readable by its owner only, atomically (temp file + rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// Reads a private key file, refusing one that group or others can read.
pub fn read_private(path: &Path) -> Result<Vec<u8>> {
    let meta = fs::metadata(path).map_err(|e| io_err(path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Config(format!(
            "{} is readable by group or others; chmod 600 it",
            path.display()
        )));
    }
    fs::read(path).map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Config(format!("{}: {e}", path.display()))
}

/// Loads the signing key from `dir/signing-key.der`, creating it on first start. Its `kid` is
/// its RFC 7638 thumbprint, so a rotated key gets a new `kid` by construction.
pub fn load_or_create_signing_key(dir: &Path) -> Result<SigningKey> {
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
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

/// Paths of the dev PKI.
#[derive(Debug, Clone)]
pub struct DevTls {
    /// The root CA certificate clients must trust.
    pub ca_cert: PathBuf,
    /// The server certificate chain.
    pub cert: PathBuf,
    /// The server private key.
    pub key: PathBuf,
}

/// Creates (once) a dev root CA and a server certificate for `localhost`, `127.0.0.1`, `::1`
/// and `extra_host`, in `dir/tls/`.
pub fn ensure_dev_tls(dir: &Path, extra_host: Option<&str>) -> Result<DevTls> {
    let tls = dir.join("tls");
    let paths = DevTls {
        ca_cert: tls.join("ca.pem"),
        cert: tls.join("server.pem"),
        key: tls.join("server-key.pem"),
    };
    if paths.ca_cert.exists() && paths.cert.exists() && paths.key.exists() {
        return Ok(paths);
    }
    fs::create_dir_all(&tls).map_err(|e| io_err(&tls, e))?;
    let (ca_pem, cert_pem, key_pem) =
        generate_dev_tls(extra_host).map_err(|e| Error::Config(format!("dev TLS: {e}")))?;
    fs::write(&paths.ca_cert, ca_pem).map_err(|e| io_err(&paths.ca_cert, e))?;
    write_private(&paths.key, key_pem.as_bytes())?;
    fs::write(&paths.cert, cert_pem).map_err(|e| io_err(&paths.cert, e))?;
    Ok(paths)
}

fn generate_dev_tls(
    extra_host: Option<&str>,
) -> std::result::Result<(String, String, String), rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "e2ei dev root CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = extra_host.filter(|h| !names.iter().any(|n| n == h)) {
        names.push(host.to_owned());
    }
    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(names)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "e2ei dev server");
    server.is_ca = IsCa::ExplicitNoCa;
    let server_cert = server.signed_by(&server_key, &issuer)?;
    Ok((ca_cert.pem(), server_cert.pem(), server_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn dev_tls_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_dev_tls(dir.path(), Some("auth.test")).unwrap();
        let first = fs::read(&a.cert).unwrap();
        ensure_dev_tls(dir.path(), None).unwrap();
        assert_eq!(fs::read(&a.cert).unwrap(), first);
        assert_eq!(
            fs::metadata(&a.key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
