//! The token signing keys.
//!
//! - **In the store** (SQLite, the embedded default, and PostgreSQL: stores other processes may
//!   write while the server runs): the keys are one record ([`crate::store::signing_keys`]),
//!   seeded at the first start from `keys/` (the key and the retired ones), and every server
//!   process reads them again every [`RELOAD_SECS`]. `keys rotate` adds a key that signs only
//!   from [`PUBLISH_AHEAD_SECS`] on, so every process publishes it before any signs with it, and
//!   gives the old one a retirement time; the server may run meanwhile, and no restart is
//!   needed.
//! - **In files** (an older sled store, which only the server may open while it runs): the key
//!   on disk, generated once, written with mode 0600, reused across restarts, and rotated by the
//!   operator while the server is stopped: the old key moves to `retired/` with the time its
//!   last token expires, and stays published in the JWKS (and accepted by this server) until
//!   then.
//!
//! [`KeyRing`] is what the provider holds; [`KeySet`] is the keys at one time: which one signs,
//! which are published. (Private-file handling and the dev TLS PKI are in [`server_kit`].)

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use proto::clock::UnixTime;
use proto::jwk::Jwk;
use proto::jws::{Algorithm, SigningKey};
use serde::{Deserialize, Serialize};

use server_kit::files::{create_dir, read_private, write_private};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::signing_keys::{self, RetiredPublic, StoredKey, StoredKeySet};

/// How often a replica reads the shared keys again.
pub const RELOAD_SECS: u64 = 5;

/// How long after `keys rotate` the new key starts signing (every replica publishes it first:
/// several reloads, and a resource server's JWKS refetch).
pub const PUBLISH_AHEAD_SECS: i64 = 60;

/// A key with when it signs from and until when it is published.
#[derive(Debug)]
struct Timed {
    key: Arc<SigningKey>,
    active_from: UnixTime,
    retire_after: Option<UnixTime>,
}

/// The keys at one time.
#[derive(Debug)]
pub struct KeySet {
    /// Oldest first.
    keys: Vec<Timed>,
    /// The oldest key: it signs when no key's time has come yet.
    oldest: Arc<SigningKey>,
    /// Retired keys known by their public half only (from `retired/` on disk).
    retired: Vec<(Jwk, UnixTime)>,
}

impl KeySet {
    /// The key that signs at `now`: the newest whose time has come (the oldest if none has).
    pub fn signing(&self, now: UnixTime) -> Arc<SigningKey> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.active_from <= now)
            .map_or_else(|| self.oldest.clone(), |k| k.key.clone())
    }

    /// The keys tokens verify with at `now`, and the JWKS: every key not yet retired, those
    /// about to sign included.
    pub fn published(&self, now: UnixTime) -> Vec<Jwk> {
        self.keys
            .iter()
            .filter(|k| k.retire_after.is_none_or(|until| until >= now))
            .map(|k| k.key.public_jwk().clone())
            .chain(
                self.retired
                    .iter()
                    .filter(|(_, until)| *until >= now)
                    .map(|(k, _)| k.clone()),
            )
            .collect()
    }

    fn from_stored(set: &StoredKeySet) -> Result<Self> {
        let keys = set
            .keys
            .iter()
            .map(|stored| {
                let der = proto::b64::decode(&stored.pkcs8, "signing key")
                    .map_err(|e| Error::Config(format!("a stored signing key: {e}")))?;
                let key = SigningKey::from_pkcs8_der(Algorithm::Es256, &der)
                    .map_err(|e| Error::Config(format!("a stored signing key: {e}")))?;
                let kid = key.public_jwk().thumbprint();
                Ok(Timed {
                    key: Arc::new(key.with_kid(kid)),
                    active_from: stored.active_from,
                    retire_after: stored.retire_after,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let oldest = keys
            .first()
            .map(|k| k.key.clone())
            .ok_or_else(|| Error::Config("the stored signing key set is empty".into()))?;
        let retired = set
            .retired_public
            .iter()
            .map(|r| {
                Jwk::from_json(&r.jwk)
                    .map(|jwk| (jwk, r.retire_after))
                    .map_err(|e| Error::Config(format!("a stored retired key: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            keys,
            oldest,
            retired,
        })
    }
}

/// Where the keys come from.
#[derive(Debug)]
enum Source {
    /// Read once at start.
    Files,
    /// In the store, read again every [`RELOAD_SECS`].
    Shared(Arc<dyn Store>),
}

/// The provider's signing keys.
#[derive(Debug)]
pub struct KeyRing {
    source: Source,
    loaded: RwLock<(Instant, Arc<KeySet>)>,
}

impl KeyRing {
    /// The keys of the data directory's `keys/` (one process).
    pub fn from_files(dir: &Path, now: UnixTime) -> Result<Self> {
        let key = Arc::new(load_or_create_signing_key(dir)?);
        let set = KeySet {
            keys: vec![Timed {
                key: key.clone(),
                active_from: UnixTime::MIN,
                retire_after: None,
            }],
            oldest: key,
            retired: retired_keys(dir, now)?,
        };
        Ok(Self {
            source: Source::Files,
            loaded: RwLock::new((Instant::now(), Arc::new(set))),
        })
    }

    /// The keys in `store`, which every process using it shares; the first to start stores its
    /// key files' keys (current and retired) as the set. A key file left in `dir` is still
    /// checked at every start: it is a private key, refused when others may read it.
    pub fn shared(store: Arc<dyn Store>, dir: &Path, now: UnixTime) -> Result<Self> {
        if signing_keys::read(store.as_ref())?.is_some() {
            if dir.join(KEY_FILE).exists() {
                load_or_create_signing_key(dir)?;
            }
        } else {
            let current = load_or_create_signing_key(dir)?;
            let set = StoredKeySet {
                keys: vec![StoredKey {
                    pkcs8: proto::b64::encode(current.pkcs8_der().expose()),
                    active_from: UnixTime::MIN,
                    retire_after: None,
                }],
                // Tokens signed by keys retired before the move still verify.
                retired_public: retired_keys(dir, now)?
                    .into_iter()
                    .map(|(jwk, retire_after)| RetiredPublic {
                        jwk: jwk.to_json(),
                        retire_after,
                    })
                    .collect(),
            };
            // A replica that stored its set first wins; this one adopts it.
            signing_keys::create(store.as_ref(), &set)?;
        }
        let set = Self::read_shared(store.as_ref())?;
        Ok(Self {
            source: Source::Shared(store),
            loaded: RwLock::new((Instant::now(), Arc::new(set))),
        })
    }

    fn read_shared(store: &dyn Store) -> Result<KeySet> {
        let stored = signing_keys::read(store)?
            .ok_or_else(|| Error::Config("the shared signing keys are gone".into()))?;
        KeySet::from_stored(stored.value())
    }

    /// The keys now (for a shared store, read again when the last read is older than
    /// [`RELOAD_SECS`]; a failed read keeps the keys read before, and says so in the log).
    pub fn current(&self) -> Arc<KeySet> {
        let (loaded_at, set) = {
            let loaded = self
                .loaded
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (loaded.0, loaded.1.clone())
        };
        let Source::Shared(store) = &self.source else {
            return set;
        };
        if loaded_at.elapsed().as_secs() < RELOAD_SECS {
            return set;
        }
        match Self::read_shared(store.as_ref()) {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *self
                    .loaded
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    (Instant::now(), fresh.clone());
                fresh
            }
            Err(e) => {
                tracing::warn!(error = %e, "the shared signing keys could not be read again");
                // Tried again after the interval, not at every request meanwhile.
                *self
                    .loaded
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    (Instant::now(), set.clone());
                set
            }
        }
    }
}

/// Rotates the shared keys at `now`: a new key signs from `now + PUBLISH_AHEAD_SECS`, the key
/// signing until then stays published until `retire_after` past that. Refused while an
/// earlier rotation's key has not started signing yet. Returns the new key's `kid` and when it
/// signs from.
pub fn rotate_shared(
    store: &dyn Store,
    now: UnixTime,
    tokens_outlive_by: i64,
) -> Result<(String, UnixTime)> {
    loop {
        let read = signing_keys::read(store)?.ok_or_else(|| {
            Error::Config("no shared signing keys yet: start a server first".into())
        })?;
        let mut set = read.value().clone();
        if let Some(pending) = set.keys.iter().find(|k| k.active_from > now) {
            return Err(Error::Config(format!(
                "a rotation is pending: its key signs from {}; rotate again after that",
                proto::rfc3339::format(pending.active_from)
            )));
        }
        let active_from = now + PUBLISH_AHEAD_SECS;
        // Keys past their retirement go; the newest gets its own.
        set.keys
            .retain(|k| k.retire_after.is_none_or(|until| until >= now));
        set.retired_public.retain(|r| r.retire_after >= now);
        for key in &mut set.keys {
            if key.retire_after.is_none() {
                key.retire_after = Some(active_from + tokens_outlive_by);
            }
        }
        let next =
            SigningKey::generate(Algorithm::Es256).map_err(|e| Error::Config(e.to_string()))?;
        let kid = next.public_jwk().thumbprint();
        set.keys.push(StoredKey {
            pkcs8: proto::b64::encode(next.pkcs8_der().expose()),
            active_from,
            retire_after: None,
        });
        if signing_keys::replace(store, &read, &set)? {
            return Ok((kid, active_from));
        }
    }
}

/// The signing key's file in `keys/`.
const KEY_FILE: &str = "signing-key.der";

/// Loads the signing key from `dir/signing-key.der`, creating it on first start. Its `kid` is
/// its RFC 7638 thumbprint, so a rotated key gets a new `kid` by construction.
pub fn load_or_create_signing_key(dir: &Path) -> Result<SigningKey> {
    create_dir(dir)?;
    let path = dir.join(KEY_FILE);
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

/// Retires the current key in the files (kept for verification until `retire_after`) and
/// creates a new one: for an older sled store, while the server is stopped. Returns the new
/// key's `kid`.
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
    write_private(&dir.join(KEY_FILE), next.pkcs8_der().expose())?;
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

    #[test]
    fn a_shared_rotation_is_published_first_signs_later_and_retires_the_old_key() {
        let (dir, store) = crate::store::temporary();
        let store: Arc<dyn Store> = Arc::new(store);
        // A key rotated in the files before the move stays published.
        let files_old = load_or_create_signing_key(&dir.path().join("keys")).unwrap();
        rotate(&dir.path().join("keys"), 1500).unwrap();
        let keys = KeyRing::shared(store.clone(), &dir.path().join("keys"), 1000).unwrap();
        let files_old = files_old.public_jwk().kid.clone().unwrap();
        let old = keys
            .current()
            .signing(1000)
            .public_jwk()
            .kid
            .clone()
            .unwrap();
        // Another replica starting later adopts the stored keys, whatever its files hold.
        let other_dir = tempfile::tempdir().unwrap();
        let other = KeyRing::shared(store.clone(), other_dir.path(), 1000).unwrap();
        assert_eq!(
            other.current().signing(1000).public_jwk().kid.as_deref(),
            Some(old.as_str())
        );

        let (new, from) = rotate_shared(store.as_ref(), 1000, 900).unwrap();
        assert_eq!(from, 1000 + PUBLISH_AHEAD_SECS);
        assert!(
            rotate_shared(store.as_ref(), 1001, 900).is_err(),
            "a second rotation while one is pending"
        );
        let set = KeyRing::read_shared(store.as_ref()).unwrap();
        let kids =
            |jwks: Vec<Jwk>| -> Vec<String> { jwks.into_iter().filter_map(|k| k.kid).collect() };
        // Published at once, signing only from its time.
        assert_eq!(
            kids(set.published(1000)),
            [old.clone(), new.clone(), files_old.clone()]
        );
        assert_eq!(kids(set.published(1501)), [old.clone(), new.clone()]);
        assert_eq!(
            set.signing(from - 1).public_jwk().kid.as_deref(),
            Some(old.as_str())
        );
        assert_eq!(
            set.signing(from).public_jwk().kid.as_deref(),
            Some(new.as_str())
        );
        // The old key stays published until its last token has expired.
        assert_eq!(kids(set.published(from + 900)), [old.clone(), new.clone()]);
        assert_eq!(kids(set.published(from + 901)), std::slice::from_ref(&new));
        // The next rotation drops it from the record.
        rotate_shared(store.as_ref(), from + 901, 900).unwrap();
        let set = KeyRing::read_shared(store.as_ref()).unwrap();
        assert_eq!(set.keys.len(), 2);
    }
}
