//! An External Account Binding key (RFC 8555 §7.3.4) issued by the operator. Its HMAC key is a
//! secret: held as a [`SecretString`] (no `Debug`, constant-time equality, wiped when dropped)
//! and stored as the base64url text it always was.

use proto::clock::UnixTime;
use proto::secret::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An External Account Binding key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EabKey {
    /// Key id.
    pub kid: String,
    /// The HMAC key, base64url.
    #[serde(with = "secret_text")]
    pub mac_key: SecretString,
    /// When it was made.
    pub created_at: UnixTime,
    /// The account it bound, once used (a key binds one account).
    pub account_id: Option<String>,
}

impl EabKey {
    /// The HMAC key's bytes.
    pub fn mac_key_bytes(&self) -> Result<SecretBytes> {
        proto::b64::decode(self.mac_key.expose(), "mac key")
            .map(SecretBytes::new)
            .map_err(|_| Error::Storage("EAB key is not base64url".into()))
    }
}

/// A [`SecretString`] as its plain text.
mod secret_text {
    use proto::secret::SecretString;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        secret: &SecretString,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SecretString, D::Error> {
        String::deserialize(deserializer).map(SecretString::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_key_is_stored_as_before_and_never_shown() {
        let stored = serde_json::json!({
            "kid": "kid-1",
            "mac_key": "c2VjcmV0LWhtYWMta2V5",
            "created_at": 1_700_000_000,
            "account_id": null,
        });
        let key: EabKey = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(key.mac_key, SecretString::new("c2VjcmV0LWhtYWMta2V5"));
        assert_eq!(key.mac_key_bytes().unwrap().expose(), b"secret-hmac-key");
        assert_eq!(serde_json::to_value(&key).unwrap(), stored);
        let shown = format!("{key:?}");
        assert!(
            shown.contains("kid-1") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
    }
}
