//! What a standard order's identifier names: a DNS name (possibly a wildcard) or an IP address.

use std::net::IpAddr;

use super::{Identifier, IdentifierKind};

/// A DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// A DNS name; `wildcard` when it was `*.` + the name.
    Dns {
        /// The name without `*.`.
        name: String,
        /// Whether the identifier is a wildcard.
        wildcard: bool,
    },
    /// An IP address.
    Ip(IpAddr),
}

impl Name {
    /// What a `dns` or `ip` identifier names, read as it is written; `None` for another type or
    /// an `ip` value that is no address. (Whether the name is one this CA certifies is the
    /// registration authority's name policy.)
    pub fn of(identifier: &Identifier) -> Option<Self> {
        match identifier.kind {
            IdentifierKind::Dns => Some(match identifier.value.strip_prefix("*.") {
                Some(name) => Self::Dns {
                    name: name.to_owned(),
                    wildcard: true,
                },
                None => Self::Dns {
                    name: identifier.value.clone(),
                    wildcard: false,
                },
            }),
            IdentifierKind::Ip => identifier.value.parse().ok().map(Self::Ip),
            _ => None,
        }
    }
}
