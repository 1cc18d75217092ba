//! The identity-order policy (Wire profile): exactly one `wireapp-device` and one
//! `wireapp-user` identifier, values well-formed, domain configured, and handle, name and
//! domain agreeing between the two. Refusals name the identifier at fault in a subproblem.

use proto::wire_id::{DeviceIdentifier, UserIdentifier, WireIdentity};

use crate::error::{Error, ProblemType, Result};
use crate::model::{Identifier, IdentifierKind};

/// Checks the identifiers of a new order against the policy; the identity they name.
pub fn check_identifiers(identifiers: &[Identifier], domains: &[String]) -> Result<WireIdentity> {
    if identifiers.is_empty() {
        return Err(Error::malformed("an order needs identifiers"));
    }
    for id in identifiers {
        if !matches!(
            id.kind,
            IdentifierKind::WireappDevice | IdentifierKind::WireappUser
        ) {
            return Err(Error::about_identifier(
                ProblemType::UnsupportedIdentifier,
                id,
                format!("identifier type {:?} is not supported", id.kind.as_str()),
            ));
        }
    }
    let of = |kind: IdentifierKind| {
        identifiers
            .iter()
            .filter(|i| i.kind == kind)
            .collect::<Vec<_>>()
    };
    let (devices, users) = (
        of(IdentifierKind::WireappDevice),
        of(IdentifierKind::WireappUser),
    );
    let (device_id, user_id) = match (devices.as_slice(), users.as_slice()) {
        ([d], [u]) => (*d, *u),
        _ => {
            return Err(Error::malformed(
                "an identity order has exactly one wireapp-device and one wireapp-user identifier",
            ));
        }
    };
    let device = DeviceIdentifier::parse(&device_id.value)
        .map_err(|e| Error::about_identifier(ProblemType::Malformed, device_id, format!("{e}")))?;
    let user = UserIdentifier::parse(&user_id.value)
        .map_err(|e| Error::about_identifier(ProblemType::Malformed, user_id, format!("{e}")))?;
    if !domains.iter().any(|d| d == device.domain()) {
        return Err(Error::about_identifier(
            ProblemType::RejectedIdentifier,
            device_id,
            format!("this CA does not certify identities of {}", device.domain()),
        ));
    }
    WireIdentity::from_identifiers(&device, &user).map_err(|_| {
        Error::about_identifier(
            ProblemType::RejectedIdentifier,
            user_id,
            "the user identifier's handle, name or domain differs from the device identifier's",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(device: &str, user: &str) -> Vec<Identifier> {
        vec![
            Identifier::new(IdentifierKind::WireappDevice, device),
            Identifier::new(IdentifierKind::WireappUser, user),
        ]
    }

    const DEVICE: &str = r#"{"client-id":"wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com","handle":"wireapp://%40alice_wire@wire.com","name":"Alice Smith","domain":"wire.com"}"#;
    const USER: &str =
        r#"{"handle":"wireapp://%40alice_wire@wire.com","name":"Alice Smith","domain":"wire.com"}"#;

    fn problem(e: Error) -> (ProblemType, usize) {
        match e {
            Error::Problem {
                kind, identifiers, ..
            } => (kind, identifiers.len()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_transcript_identifiers_pass_and_violations_are_named() {
        let domains = vec!["wire.com".to_owned()];
        let identity = check_identifiers(&ids(DEVICE, USER), &domains).unwrap();
        assert_eq!(identity.name(), "Alice Smith");
        assert_eq!(identity.client_id().device(), "9ff0457928ebe5f4");

        let other_domain = vec!["wire.org".to_owned()];
        assert_eq!(
            problem(check_identifiers(&ids(DEVICE, USER), &other_domain).unwrap_err()),
            (ProblemType::RejectedIdentifier, 1)
        );
        let bob = USER.replace("Alice Smith", "Bob");
        assert_eq!(
            problem(check_identifiers(&ids(DEVICE, &bob), &domains).unwrap_err()),
            (ProblemType::RejectedIdentifier, 1)
        );
        assert_eq!(
            problem(check_identifiers(&ids("{", USER), &domains).unwrap_err()),
            (ProblemType::Malformed, 1)
        );
        let mut three = ids(DEVICE, USER);
        three.push(three[1].clone());
        assert_eq!(
            problem(check_identifiers(&three, &domains).unwrap_err()),
            (ProblemType::Malformed, 0)
        );
        let dns = vec![Identifier::new(IdentifierKind::Dns, "example.com")];
        assert_eq!(
            problem(check_identifiers(&dns, &domains).unwrap_err()),
            (ProblemType::UnsupportedIdentifier, 1)
        );
    }
}
