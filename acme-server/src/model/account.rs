//! The account record: its key held parsed, stored as the JWK's public members.

use proto::acme::AccountStatus;
use proto::clock::UnixTime;
use proto::jwk::Jwk;
use serde::{Deserialize, Serialize};

/// A stored account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Opaque id (URL path segment).
    pub id: String,
    /// The account's public key (stored as its JWK, parsed once when the record is read).
    #[serde(with = "jwk_members")]
    pub jwk: Jwk,
    /// Its RFC 7638 thumbprint.
    pub thumbprint: String,
    /// Status.
    pub status: AccountStatus,
    /// Contact URIs.
    pub contact: Vec<String>,
    /// Agreement to the terms.
    pub terms_of_service_agreed: Option<bool>,
    /// Creation time.
    pub created_at: UnixTime,
    /// The key id of the External Account Binding it was created with, if any.
    #[serde(default)]
    pub external_account_binding: Option<String>,
}

/// A key as an account keeps it: the public key alone, without the `kid` a key set names it by.
pub fn account_key(jwk: &Jwk) -> Jwk {
    Jwk {
        kid: None,
        ..jwk.clone()
    }
}

/// A [`Jwk`] as the JSON object of its members.
mod jwk_members {
    use proto::jwk::Jwk;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(jwk: &Jwk, serializer: S) -> Result<S::Ok, S::Error> {
        jwk.to_json().serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Jwk, D::Error> {
        let members = serde_json::Value::deserialize(deserializer)?;
        Jwk::from_json(&members).map_err(|e| D::Error::custom(format!("account key: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 §A.2's public key and §A.3's thumbprint.
    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    #[test]
    fn a_record_of_the_old_shape_is_read_with_its_key_parsed_and_written_back_alike() {
        let stored = serde_json::json!({
            "id": "acc1",
            "jwk": {"crv": "Ed25519", "kty": "OKP", "x": X},
            "thumbprint": THUMBPRINT,
            "status": "valid",
            "contact": ["mailto:ops@example.com"],
            "terms_of_service_agreed": true,
            "created_at": 1_700_000_000,
            "external_account_binding": "kid-1",
        });
        let record: AccountRecord = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(record.jwk.thumbprint(), THUMBPRINT);
        assert_eq!(record.jwk.kid, None);
        assert_eq!(serde_json::to_value(&record).unwrap(), stored);

        // Records from before External Account Binding have no such member.
        let mut older = stored;
        older
            .as_object_mut()
            .unwrap()
            .remove("external_account_binding");
        let record: AccountRecord = serde_json::from_value(older).unwrap();
        assert_eq!(record.external_account_binding, None);
    }

    #[test]
    fn an_unusable_stored_key_is_a_corrupt_record() {
        let stored = serde_json::json!({
            "id": "acc1", "jwk": {"kty": "oct", "k": "c2VjcmV0"}, "thumbprint": "t",
            "status": "valid", "contact": [], "terms_of_service_agreed": null, "created_at": 0,
        });
        assert!(serde_json::from_value::<AccountRecord>(stored).is_err());
    }
}
