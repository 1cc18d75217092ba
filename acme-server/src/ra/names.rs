//! The policy for standard orders (RFC 8555 §7.1.3, RFC 8738): whether they are accepted at all
//! (`[standard_orders]`: off by default, optionally only for accounts with an External Account
//! Binding), `dns` identifiers (lower-case LDH labels, at least two, a wildcard only as the whole
//! leftmost label) and `ip` identifiers in canonical form, at an address validation may connect
//! to. Refusals name the identifiers at fault in subproblems.

use std::net::IpAddr;

use crate::config::StandardOrders;
use crate::error::{Error, ProblemType, Result};
use crate::model::{Identifier, IdentifierKind, Name};

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
    match (&id.kind, Name::of(id)) {
        (IdentifierKind::Dns, Some(Name::Dns { name, wildcard })) => {
            if !valid_dns_name(&name) {
                return Err(rejected(
                    id,
                    format!("{:?} is not a valid DNS name", id.value),
                ));
            }
            Ok(Name::Dns { name, wildcard })
        }
        (IdentifierKind::Ip, Some(Name::Ip(ip))) => {
            if ip.to_string() != id.value {
                return Err(Error::about_identifier(
                    ProblemType::Malformed,
                    id,
                    "IP addresses must be in canonical form (RFC 8738 §3, RFC 5952)",
                ));
            }
            Ok(Name::Ip(ip))
        }
        (IdentifierKind::Ip, _) => Err(Error::about_identifier(
            ProblemType::Malformed,
            id,
            "not an IP address",
        )),
        (other, _) => Err(Error::about_identifier(
            ProblemType::UnsupportedIdentifier,
            id,
            format!("identifier type {:?} is not supported", other.as_str()),
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

/// Checks a standard order against the operator's policy: standard orders must be enabled, the
/// account bound by an External Account Binding when that is required (`bound`), the identifiers
/// well-formed ([`check_all`]) and every `ip` identifier admitted by `permits` (the address
/// policy of validation), so an order for an address validation would refuse is refused now.
pub fn check_order(
    ids: &[Identifier],
    policy: &StandardOrders,
    bound: bool,
    permits: impl Fn(IpAddr) -> bool,
) -> Result<Vec<Name>> {
    if !policy.enabled {
        return Err(Error::about_identifiers(
            ProblemType::RejectedIdentifier,
            ids,
            "this CA issues Wire identity certificates only: dns and ip orders are disabled \
             (the operator enables them with [standard_orders] enabled = true)",
        ));
    }
    if policy.require_eab && !bound {
        return Err(Error::unauthorized(
            "dns and ip orders need an account created with an External Account Binding \
             ([standard_orders] require_eab)",
        ));
    }
    let names = check_all(ids)?;
    let refused: Vec<&Identifier> = ids
        .iter()
        .zip(&names)
        .filter(|(_, name)| matches!(name, Name::Ip(ip) if !permits(*ip)))
        .map(|(id, _)| id)
        .collect();
    if !refused.is_empty() {
        return Err(Error::about_identifiers(
            ProblemType::RejectedIdentifier,
            refused,
            crate::va::addresses::REFUSED,
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(value: &str) -> Identifier {
        Identifier::new(IdentifierKind::Dns, value)
    }

    fn ip(value: &str) -> Identifier {
        Identifier::new(IdentifierKind::Ip, value)
    }

    #[test]
    fn names_and_addresses_are_checked() {
        assert_eq!(
            check(&dns("*.example.test")).unwrap(),
            Name::Dns {
                name: "example.test".into(),
                wildcard: true
            }
        );
        check(&ip("127.0.0.1")).unwrap();
        check(&ip("::1")).unwrap();
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
            assert!(check(&dns(bad)).is_err(), "{bad}");
        }
        assert!(check(&ip("0:0::1")).is_err(), "not canonical");
        assert!(check(&ip("a.test")).is_err(), "not an address");
        assert!(check(&Identifier::new(IdentifierKind::from("email"), "a@b.test")).is_err());
        assert!(check_all(&[dns("a.test"), dns("a.test")]).is_err());
    }

    #[test]
    fn orders_follow_the_operator_policy() {
        let ids = [dns("a.test"), ip("10.0.0.1"), ip("8.8.8.8")];
        let public = |ip: IpAddr| !ip.to_string().starts_with("10.");
        let kind = |e: Error| match e {
            Error::Problem {
                kind, identifiers, ..
            } => (kind, identifiers.len()),
            other => panic!("{other}"),
        };
        let off = StandardOrders::default();
        let refused = check_order(&ids, &off, true, public).unwrap_err();
        assert_eq!(kind(refused), (ProblemType::RejectedIdentifier, 3));
        let on = StandardOrders {
            enabled: true,
            ..StandardOrders::default()
        };
        let refused = check_order(&ids, &on, false, public).unwrap_err();
        assert_eq!(kind(refused), (ProblemType::RejectedIdentifier, 1));
        assert_eq!(check_order(&ids[..1], &on, false, public).unwrap().len(), 1);
        let bound_only = StandardOrders {
            require_eab: true,
            ..on
        };
        let refused = check_order(&ids[..1], &bound_only, false, public).unwrap_err();
        assert_eq!(kind(refused), (ProblemType::Unauthorized, 0));
        check_order(&ids[..1], &bound_only, true, public).unwrap();
    }
}
