//! The authorization record, with its challenges (RFC 8555 §7.1.4, §7.1.5).

use proto::acme::{AuthorizationStatus, ChallengeStatus, Problem};
use proto::clock::UnixTime;
use serde::{Deserialize, Serialize};

use super::{ChallengeKind, Identifier};

/// A stored challenge (part of its authorization record).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeRecord {
    /// Opaque id, unique within the authorization.
    pub id: String,
    /// Challenge type.
    pub kind: ChallengeKind,
    /// Token (≥128 bits).
    pub token: String,
    /// Status.
    pub status: ChallengeStatus,
    /// When it was validated.
    pub validated: Option<UnixTime>,
    /// Why it failed.
    pub error: Option<Problem>,
    /// Wire `target`.
    pub target: Option<String>,
}

/// A stored authorization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthzRecord {
    /// Opaque id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// The order it belongs to.
    pub order_id: String,
    /// The identifier (for a wildcard, the base name).
    pub identifier: Identifier,
    /// Whether the order asked for the wildcard of `identifier`.
    #[serde(default)]
    pub wildcard: bool,
    /// Status as last written.
    pub status: AuthorizationStatus,
    /// Expiry.
    pub expires: UnixTime,
    /// Challenges.
    pub challenges: Vec<ChallengeRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IdentifierKind;

    #[test]
    fn a_record_of_the_old_shape_is_read_with_typed_kinds_and_written_back_alike() {
        let stored = serde_json::json!({
            "id": "a1",
            "account_id": "acc1",
            "order_id": "o1",
            "identifier": {"type": "dns", "value": "a.test"},
            "wildcard": false,
            "status": "invalid",
            "expires": 1_700_003_600,
            "challenges": [
                {"id": "c1", "kind": "http-01", "token": "t1", "status": "invalid",
                 "validated": null, "target": null,
                 "error": {"type": "urn:ietf:params:acme:error:connection", "detail": "no",
                           "status": 400}},
                {"id": "c2", "kind": "dns-01", "token": "t2", "status": "pending",
                 "validated": null, "error": null, "target": null},
            ],
        });
        let record: AuthzRecord = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(record.identifier.kind, IdentifierKind::Dns);
        assert_eq!(record.challenges[0].kind, ChallengeKind::Http01);
        assert_eq!(record.challenges[1].kind, ChallengeKind::Dns01);
        assert_eq!(serde_json::to_value(&record).unwrap(), stored);

        // Records from before wildcards have no such member.
        let mut older = stored;
        older.as_object_mut().unwrap().remove("wildcard");
        assert!(
            !serde_json::from_value::<AuthzRecord>(older)
                .unwrap()
                .wildcard
        );
    }
}
