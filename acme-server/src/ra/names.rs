//! The policy for standard orders (RFC 8555 §7.1.3, RFC 8738): `dns` identifiers (lower-case
//! LDH labels, at least two, a wildcard only as the whole leftmost label) and `ip` identifiers in
//! canonical form. Refusals name the identifier at fault in a subproblem.

use std::net::IpAddr;

use proto::acme::Identifier;

use crate::error::{Error, ProblemType, Result};

/// Identifier type `dns`.
pub const DNS: &str = "dns";
/// Identifier type `ip`.
pub const IP: &str = "ip";

/// A checked name.
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

fn rejected(id: &Identifier, detail: impl Into<String>) -> Error {
    Error::about_identifier(ProblemType::RejectedIdentifier, id, detail)
}

/// Whether `name` is a DNS name we certify: LDH labels of 1–63, at most 253 in all, at least two
/// labels, no IP literal, lower case.
pub fn valid_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && name.parse::<IpAddr>().is_err()
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks one identifier of a standard order.
pub fn check(id: &Identifier) -> Result<Name> {
    match id.kind.as_str() {
        DNS => {
            let (name, wildcard) = match id.value.strip_prefix("*.") {
                Some(rest) => (rest, true),
                None => (id.value.as_str(), false),
            };
            if !valid_dns_name(name) {
                return Err(rejected(
                    id,
                    format!("{:?} is not a valid DNS name", id.value),
                ));
            }
            Ok(Name::Dns {
                name: name.to_owned(),
                wildcard,
            })
        }
        IP => {
            let ip: IpAddr = id.value.parse().map_err(|_| {
                Error::about_identifier(ProblemType::Malformed, id, "not an IP address")
            })?;
            if ip.to_string() != id.value {
                return Err(Error::about_identifier(
                    ProblemType::Malformed,
                    id,
                    "IP addresses must be in canonical form (RFC 8738 §3, RFC 5952)",
                ));
            }
            Ok(Name::Ip(ip))
        }
        other => Err(Error::about_identifier(
            ProblemType::UnsupportedIdentifier,
            id,
            format!("identifier type {other:?} is not supported"),
        )),
    }
}

/// Checks the identifiers of a standard order: at most 100, no duplicates.
pub fn check_all(ids: &[Identifier]) -> Result<Vec<Name>> {
    if ids.is_empty() {
        return Err(Error::malformed("an order needs identifiers"));
    }
    if ids.len() > 100 {
        return Err(Error::malformed("at most 100 identifiers per order"));
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(Error::about_identifier(
                ProblemType::Malformed,
                id,
                "duplicate identifier",
            ));
        }
    }
    ids.iter().map(check).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, value: &str) -> Identifier {
        Identifier {
            kind: kind.into(),
            value: value.into(),
        }
    }

    #[test]
    fn names_and_addresses_are_checked() {
        assert_eq!(
            check(&id(DNS, "*.example.test")).unwrap(),
            Name::Dns {
                name: "example.test".into(),
                wildcard: true
            }
        );
        check(&id(IP, "127.0.0.1")).unwrap();
        check(&id(IP, "::1")).unwrap();
        for bad in [
            "Example.test",
            "localhost",
            "a..b",
            "-a.test",
            "*.*.a.test",
            "a.*.test",
            "1.2.3.4",
            "a_b.test",
        ] {
            assert!(check(&id(DNS, bad)).is_err(), "{bad}");
        }
        assert!(check(&id(IP, "0:0::1")).is_err(), "not canonical");
        assert!(check(&id("email", "a@b.test")).is_err());
        assert!(check_all(&[id(DNS, "a.test"), id(DNS, "a.test")]).is_err());
    }
}
