//! The order record (RFC 8555 §7.1.3). In memory it carries its [`OrderProfile`]; the store keeps
//! the shape orders always had: the identity as `wire` for identity orders, nothing more for
//! standard orders, whose names are read back from the identifiers.

use proto::acme::{OrderStatus, Problem};
use proto::clock::UnixTime;
use proto::wire_id::WireIdentity;
use serde::{Deserialize, Serialize};

use super::{Identifier, IdentifierKind, Name, OrderProfile};
use crate::error::Error;

/// A stored order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "StoredOrder", into = "StoredOrder")]
pub struct OrderRecord {
    /// Opaque id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// Status as last written (the registration authority applies expiry when it reads it).
    pub status: OrderStatus,
    /// Expiry.
    pub expires: UnixTime,
    /// Identifiers as requested.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore.
    pub not_before: Option<UnixTime>,
    /// Requested notAfter.
    pub not_after: Option<UnixTime>,
    /// Authorization ids, in identifier order.
    pub authorizations: Vec<String>,
    /// Why it became invalid.
    pub error: Option<Problem>,
    /// Issued certificate id.
    pub certificate: Option<String>,
    /// The ARI certID of the certificate this order replaces.
    pub replaces: Option<String>,
    /// The certificate profile named in newOrder and the order object (`wire-identity` or a
    /// configured one; empty in records from before profiles).
    pub certificate_profile: String,
    /// What the order certifies.
    pub profile: OrderProfile,
}

impl OrderRecord {
    /// What "shares an identifier" (RFC 9773 §5) compares: an identity order's client id and
    /// handle (the identifier values are JSON, whose member order and spacing may differ from
    /// one order to the next), a standard order's identifiers as they are (they are canonical).
    pub fn identity_keys(&self) -> Vec<(IdentifierKind, String)> {
        match &self.profile {
            OrderProfile::Identity(identity) => vec![
                (IdentifierKind::WireappDevice, identity.client_id().to_uri()),
                (IdentifierKind::WireappUser, identity.handle().to_uri()),
            ],
            OrderProfile::Names(_) => self
                .identifiers
                .iter()
                .map(|id| (id.kind.clone(), id.value.clone()))
                .collect(),
        }
    }
}

/// An order as the store keeps it.
#[derive(Serialize, Deserialize)]
struct StoredOrder {
    id: String,
    account_id: String,
    status: OrderStatus,
    expires: UnixTime,
    identifiers: Vec<Identifier>,
    not_before: Option<UnixTime>,
    not_after: Option<UnixTime>,
    authorizations: Vec<String>,
    error: Option<Problem>,
    certificate: Option<String>,
    #[serde(default)]
    replaces: Option<String>,
    #[serde(default)]
    profile: String,
    /// The identity of an identity order; absent for standard orders.
    wire: Option<WireIdentity>,
}

impl TryFrom<StoredOrder> for OrderRecord {
    type Error = Error;

    fn try_from(stored: StoredOrder) -> Result<Self, Error> {
        let profile = match stored.wire {
            Some(identity) => OrderProfile::Identity(identity),
            None => OrderProfile::Names(
                stored
                    .identifiers
                    .iter()
                    .map(|identifier| {
                        Name::of(identifier).ok_or_else(|| {
                            Error::Storage(format!(
                                "order {}: {} is not a name",
                                stored.id, identifier.kind
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Self {
            id: stored.id,
            account_id: stored.account_id,
            status: stored.status,
            expires: stored.expires,
            identifiers: stored.identifiers,
            not_before: stored.not_before,
            not_after: stored.not_after,
            authorizations: stored.authorizations,
            error: stored.error,
            certificate: stored.certificate,
            replaces: stored.replaces,
            certificate_profile: stored.profile,
            profile,
        })
    }
}

impl From<OrderRecord> for StoredOrder {
    fn from(order: OrderRecord) -> Self {
        Self {
            id: order.id,
            account_id: order.account_id,
            status: order.status,
            expires: order.expires,
            identifiers: order.identifiers,
            not_before: order.not_before,
            not_after: order.not_after,
            authorizations: order.authorizations,
            error: order.error,
            certificate: order.certificate,
            replaces: order.replaces,
            profile: order.certificate_profile,
            wire: match order.profile {
                OrderProfile::Identity(identity) => Some(identity),
                OrderProfile::Names(_) => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: &str = r#"{"client-id":"wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com","handle":"wireapp://%40alice_wire@wire.com","name":"Alice Smith","domain":"wire.com"}"#;
    const USER: &str =
        r#"{"handle":"wireapp://%40alice_wire@wire.com","name":"Alice Smith","domain":"wire.com"}"#;

    fn identity_order() -> serde_json::Value {
        serde_json::json!({
            "id": "o1",
            "account_id": "acc1",
            "status": "valid",
            "expires": 1_700_003_600,
            "identifiers": [
                {"type": "wireapp-device", "value": DEVICE},
                {"type": "wireapp-user", "value": USER},
            ],
            "not_before": null,
            "not_after": null,
            "authorizations": ["a1", "a2"],
            "error": null,
            "certificate": "cert1",
            "replaces": null,
            "profile": "wire-identity",
            "wire": {
                "client_id": "wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com",
                "handle": "wireapp://%40alice_wire@wire.com",
                "name": "Alice Smith",
            },
        })
    }

    #[test]
    fn an_identity_order_of_the_old_shape_is_read_as_its_profile_and_written_back_alike() {
        let stored = identity_order();
        let order: OrderRecord = serde_json::from_value(stored.clone()).unwrap();
        let OrderProfile::Identity(identity) = &order.profile else {
            panic!("{:?}", order.profile);
        };
        assert_eq!(identity.client_id().device(), "9ff0457928ebe5f4");
        assert_eq!(order.certificate_profile, "wire-identity");
        assert_eq!(order.identifiers[0].kind, IdentifierKind::WireappDevice);
        assert_eq!(serde_json::to_value(&order).unwrap(), stored);

        // Records from before profiles and replacements, with the identity's domain as the
        // first identity records stored it.
        let mut older = stored;
        let members = older.as_object_mut().unwrap();
        members.remove("replaces");
        members.remove("profile");
        members["wire"]["domain"] = "wire.com".into();
        let order: OrderRecord = serde_json::from_value(older).unwrap();
        assert_eq!(order.certificate_profile, "");
        assert_eq!(order.replaces, None);
        assert_eq!(order.profile.identity(), Some(identity));
    }

    #[test]
    fn a_standard_order_of_the_old_shape_is_read_with_its_names() {
        let stored = serde_json::json!({
            "id": "o2",
            "account_id": "acc1",
            "status": "pending",
            "expires": 1_700_003_600,
            "identifiers": [
                {"type": "dns", "value": "*.example.test"},
                {"type": "ip", "value": "192.0.2.7"},
            ],
            "not_before": 1_700_000_000,
            "not_after": null,
            "authorizations": ["a3", "a4"],
            "error": null,
            "certificate": null,
            "replaces": "aki.serial",
            "profile": "shortlived",
            "wire": null,
        });
        let order: OrderRecord = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(
            order.profile,
            OrderProfile::Names(vec![
                Name::Dns {
                    name: "example.test".into(),
                    wildcard: true
                },
                Name::Ip("192.0.2.7".parse().unwrap()),
            ])
        );
        assert_eq!(serde_json::to_value(&order).unwrap(), stored);

        let mut unreadable = stored;
        unreadable["identifiers"][1]["value"] = "not an address".into();
        assert!(serde_json::from_value::<OrderRecord>(unreadable).is_err());
    }
}
