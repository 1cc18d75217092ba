//! Identifiers (RFC 8555 §7.1.3, §9.7.7; RFC 8738; Wire's two types): the type as an
//! [`IdentifierKind`], the value as the client wrote it. Serialised as the wire object
//! (`{"type", "value"}`), which is also how orders and authorizations store them.

use std::net::IpAddr;

use proto::acme::{WIREAPP_DEVICE, WIREAPP_USER};
use proto::wire_id::{DeviceIdentifier, UserIdentifier};
use serde::{Deserialize, Serialize};

use super::kinds::string_kinds;

string_kinds! {
    /// An identifier type.
    IdentifierKind {
        /// `dns`: a DNS name, or `*.` and a name (RFC 8555 §7.1.3).
        Dns => "dns",
        /// `ip`: an IP address in canonical form (RFC 8738).
        Ip => "ip",
        /// `wireapp-device`: the JSON of a [`DeviceIdentifier`].
        WireappDevice => WIREAPP_DEVICE,
        /// `wireapp-user`: the JSON of a [`UserIdentifier`].
        WireappUser => WIREAPP_USER,
    }
}

impl IdentifierKind {
    /// Whether an order naming this type is a Wire identity order: the two Wire types, and any
    /// other `wireapp-` type, which the identity policy then names as unsupported.
    pub fn is_wire(&self) -> bool {
        match self {
            Self::WireappDevice | Self::WireappUser => true,
            Self::Unknown(other) => other.starts_with("wireapp-"),
            Self::Dns | Self::Ip => false,
        }
    }
}

/// An identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: IdentifierKind,
    /// Its value; for the Wire types a JSON object written as a string.
    pub value: String,
}

impl Identifier {
    /// An identifier of `kind` with `value`.
    pub fn new(kind: IdentifierKind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }

    /// Its canonical form, `type:value`, so that the same identity or name written another way
    /// (spacing or member order of a Wire identifier's JSON, letter case of a DNS name, another
    /// spelling of an address) has one key: what failed validations are counted under.
    pub fn canonical_key(&self) -> String {
        let value = &self.value;
        let canonical = match &self.kind {
            IdentifierKind::WireappDevice => DeviceIdentifier::parse(value)
                .map(|d| d.client_id.to_uri())
                .ok(),
            IdentifierKind::WireappUser => {
                UserIdentifier::parse(value).map(|u| u.handle.to_uri()).ok()
            }
            IdentifierKind::Dns => Some(value.to_ascii_lowercase()),
            IdentifierKind::Ip => value.parse::<IpAddr>().map(|ip| ip.to_string()).ok(),
            IdentifierKind::Unknown(_) => None,
        };
        format!(
            "{}:{}",
            self.kind,
            canonical.unwrap_or_else(|| value.clone())
        )
    }
}

impl From<proto::acme::Identifier> for Identifier {
    fn from(identifier: proto::acme::Identifier) -> Self {
        Self {
            kind: IdentifierKind::from(identifier.kind.as_str()),
            value: identifier.value,
        }
    }
}

impl From<&Identifier> for proto::acme::Identifier {
    fn from(identifier: &Identifier) -> Self {
        Self {
            kind: identifier.kind.to_string(),
            value: identifier.value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_and_write_as_their_names() {
        for (text, kind) in [
            ("dns", IdentifierKind::Dns),
            ("ip", IdentifierKind::Ip),
            ("wireapp-device", IdentifierKind::WireappDevice),
            ("wireapp-user", IdentifierKind::WireappUser),
            ("email", IdentifierKind::Unknown("email".into())),
        ] {
            assert_eq!(IdentifierKind::from(text), kind);
            let json = format!(r#"{{"type":"{text}","value":"v"}}"#);
            let identifier: Identifier = serde_json::from_str(&json).unwrap();
            assert_eq!(identifier.kind, kind);
            assert_eq!(serde_json::to_string(&identifier).unwrap(), json);
            assert_eq!(proto::acme::Identifier::from(&identifier).kind, text);
        }
        assert!(IdentifierKind::from("wireapp-team").is_wire());
        assert!(!IdentifierKind::Dns.is_wire());
    }

    #[test]
    fn one_identity_written_two_ways_shares_its_failure_bucket() {
        let id = |kind, value: &str| Identifier::new(kind, value);
        let compact = r#"{"client-id":"wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com","handle":"wireapp://%40alice_wire@wire.com","name":"Alice Smith","domain":"wire.com"}"#;
        let spaced = r#"{"domain": "wire.com", "name": "Alice Smith", "handle": "wireapp://%40alice_wire@wire.com", "client-id": "wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com"}"#;
        assert_eq!(
            id(IdentifierKind::WireappDevice, compact).canonical_key(),
            id(IdentifierKind::WireappDevice, spaced).canonical_key()
        );
        assert_eq!(
            id(IdentifierKind::Dns, "Example.TEST").canonical_key(),
            id(IdentifierKind::Dns, "example.test").canonical_key()
        );
        assert_eq!(
            id(IdentifierKind::Ip, "::0001").canonical_key(),
            id(IdentifierKind::Ip, "::1").canonical_key()
        );
        assert_ne!(
            id(IdentifierKind::Dns, "a.test").canonical_key(),
            id(IdentifierKind::Dns, "b.test").canonical_key()
        );
    }
}
