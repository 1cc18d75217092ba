//! Sealing of the upstream tokens this server keeps (AES-256-GCM, ring): each seal draws a
//! fresh random 96-bit nonce, and authenticates the key of the record it goes into as
//! associated data, so a sealed blob moved to another record (another user's, another
//! upstream's) does not open. The 32-byte key lives in an owner-only file
//! (`upstream_tokens_key_file`, by default `{data_dir}/upstream-tokens.key`), made at the
//! first start (0600, in a directory made 0700 when it is missing) and refused when group or
//! others can read it. Losing the file loses the kept tokens (users log in through the
//! upstream again), nothing else.

use std::path::Path;

use proto::secret::SecretBytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::error::{Error, Result};

/// Bytes of the key.
pub const KEY_LEN: usize = 32;

/// The key upstream tokens are sealed with (never printed).
pub struct TokenKey(LessSafeKey);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

impl TokenKey {
    /// The key in `path`, made there (random, 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let unusable = |what: String| Error::Config(format!("{}: {what}", path.display()));
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && !dir.exists()
            {
                server_kit::files::private_dir(dir)?;
            }
            server_kit::files::write_private(path, &proto::random::bytes(KEY_LEN))?;
        }
        let bytes = SecretBytes::new(server_kit::files::read_private(path)?);
        Self::from_bytes(bytes.expose()).map_err(|_| {
            unusable(format!(
                "an upstream token key must hold exactly {KEY_LEN} bytes"
            ))
        })
    }

    /// A key of exactly [`KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != KEY_LEN {
            return Err(Error::Config(format!("the key must be {KEY_LEN} bytes")));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| Error::Config("unusable AES-256 key".into()))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// `plaintext` sealed for the record `record_key`: base64url of nonce, ciphertext and tag.
    pub fn seal(&self, record_key: &str, plaintext: &[u8]) -> Result<String> {
        let nonce_bytes = proto::random::bytes(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes)
            .map_err(|_| Error::Internal("nonce".into()))?;
        let mut sealed = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(nonce, Aad::from(record_key.as_bytes()), &mut sealed)
            .map_err(|_| Error::Internal("sealing failed".into()))?;
        let mut out = nonce_bytes;
        out.extend_from_slice(&sealed);
        Ok(proto::b64::encode(out))
    }

    /// Opens what [`Self::seal`] sealed for the same `record_key`; anything else (another
    /// record's blob, a changed byte, another key) is refused.
    pub fn open(&self, record_key: &str, sealed: &str) -> Result<SecretBytes> {
        let refused = || Error::Storage(format!("the sealed tokens of {record_key} do not open"));
        let mut bytes = proto::b64::decode(sealed, "sealed").map_err(|_| refused())?;
        if bytes.len() < NONCE_LEN {
            return Err(refused());
        }
        let mut ciphertext = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| refused())?;
        let plaintext = self
            .0
            .open_in_place(nonce, Aad::from(record_key.as_bytes()), &mut ciphertext)
            .map_err(|_| refused())?;
        let opened = SecretBytes::new(plaintext.to_vec());
        ciphertext.fill(0);
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_blob_opens_only_for_its_record_unchanged_and_with_its_key() {
        let key = TokenKey::from_bytes(&[7; KEY_LEN]).unwrap();
        let sealed = key.seal("corp/u1", b"access-token-value").unwrap();
        assert_eq!(
            key.open("corp/u1", &sealed).unwrap().expose(),
            b"access-token-value"
        );
        // Two seals of the same text differ (a fresh nonce each).
        assert_ne!(sealed, key.seal("corp/u1", b"access-token-value").unwrap());
        assert!(!sealed.contains("access-token"));
        // Moved to another record.
        assert!(key.open("corp/u2", &sealed).is_err());
        // Tampered: each byte flipped in turn.
        let raw = proto::b64::decode(&sealed, "t").unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            assert!(
                key.open("corp/u1", &proto::b64::encode(&bad)).is_err(),
                "byte {i}"
            );
        }
        assert!(
            key.open("corp/u1", &proto::b64::encode(&raw[..raw.len() - 1]))
                .is_err()
        );
        assert!(key.open("corp/u1", "AAAA").is_err());
        assert!(key.open("corp/u1", "not base64!").is_err());
        let other = TokenKey::from_bytes(&[8; KEY_LEN]).unwrap();
        assert!(other.open("corp/u1", &sealed).is_err());
        assert!(TokenKey::from_bytes(&[7; 16]).is_err());
        assert_eq!(format!("{key:?}"), "TokenKey(…)");
    }

    #[test]
    fn the_key_file_is_made_owner_only_once_and_refused_when_others_can_read_it() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("keys");
        let path = dir.join("upstream-tokens.key");
        let first = TokenKey::load_or_create(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(std::fs::read(&path).unwrap().len(), KEY_LEN);
        let sealed = first.seal("r", b"t").unwrap();
        // The same key next time.
        let again = TokenKey::load_or_create(&path).unwrap();
        assert_eq!(again.open("r", &sealed).unwrap().expose(), b"t");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = TokenKey::load_or_create(&path).unwrap_err().to_string();
        assert!(refused.contains("readable by group or others"), "{refused}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        let refused = TokenKey::load_or_create(&path).unwrap_err().to_string();
        assert!(refused.contains("exactly 32 bytes"), "{refused}");
    }
}
