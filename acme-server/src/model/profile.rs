//! What an order certifies, decided once when the order is created ([`OrderProfile`]), and the
//! answers every part takes from it instead of telling identity and name orders apart itself:
//! which authorizations and challenges the order needs ([`OrderProfile::authorizations`]),
//! whether earlier authorizations are reused, which CSR check finalize applies (the CA's
//! `csr::validate` takes the profile), whether the certificate is issued before the finalize
//! response or in the background ([`IssuanceTiming`]), and whether a refused challenge answer is
//! the response or is read from the challenge ([`RefusalDelivery`]).

use proto::wire_id::WireIdentity;

use super::{ChallengeKind, Identifier, IdentifierKind, Name};

/// What an order certifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderProfile {
    /// A Wire identity certificate (the `wire-identity` profile): the device and user that the
    /// order's `wireapp-device` and `wireapp-user` identifiers name.
    Identity(WireIdentity),
    /// A certificate for DNS names and IP addresses (a standard order), one per identifier, in
    /// identifier order.
    Names(Vec<Name>),
}

/// An authorization an order needs: what it is for and the challenges that may prove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzPlan {
    /// The identifier (for a wildcard, the base name).
    pub identifier: Identifier,
    /// Whether the order asked for the wildcard of `identifier`.
    pub wildcard: bool,
    /// The challenges offered, in order.
    pub challenges: Vec<ChallengeKind>,
}

/// When finalize issues the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuanceTiming {
    /// Before answering: the response shows the order `valid` (Wire clients expect it).
    BeforeResponse,
    /// After answering `processing` with `Retry-After` (RFC 8555 §7.4).
    InBackground,
}

/// Where the client learns that its challenge answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalDelivery {
    /// The refusal is the response's problem document (what Wire clients expect, as step-ca
    /// answers).
    AsResponse,
    /// The response is the (now invalid) challenge, its `error` the refusal (RFC 8555 §7.5.1).
    InChallenge,
}

impl OrderProfile {
    /// The authorizations of an order for `identifiers` (in identifier order): one Wire
    /// challenge per Wire identifier (`wire-dpop-01` for the device, `wire-oidc-01` for the
    /// user); `dns-01` alone for a wildcard, `http-01`, `dns-01` and `tls-alpn-01` for another
    /// name, `http-01` and `tls-alpn-01` for an address.
    pub fn authorizations(&self, identifiers: &[Identifier]) -> Vec<AuthzPlan> {
        let plan = |identifier: &Identifier, wildcard, challenges| AuthzPlan {
            identifier: identifier.clone(),
            wildcard,
            challenges,
        };
        match self {
            Self::Identity(_) => identifiers
                .iter()
                .map(|identifier| {
                    let challenge = match identifier.kind {
                        IdentifierKind::WireappDevice => ChallengeKind::WireDpop01,
                        _ => ChallengeKind::WireOidc01,
                    };
                    plan(identifier, false, vec![challenge])
                })
                .collect(),
            Self::Names(names) => identifiers
                .iter()
                .zip(names)
                .map(|(identifier, name)| match name {
                    Name::Dns {
                        name,
                        wildcard: true,
                    } => plan(
                        &Identifier::new(IdentifierKind::Dns, name.as_str()),
                        true,
                        vec![ChallengeKind::Dns01],
                    ),
                    Name::Dns { .. } => plan(
                        identifier,
                        false,
                        vec![
                            ChallengeKind::Http01,
                            ChallengeKind::Dns01,
                            ChallengeKind::TlsAlpn01,
                        ],
                    ),
                    Name::Ip(_) => plan(
                        identifier,
                        false,
                        vec![ChallengeKind::Http01, ChallengeKind::TlsAlpn01],
                    ),
                })
                .collect(),
        }
    }

    /// Whether a valid authorization of the account for the same identifier is reused
    /// (RFC 8555 §7.1.3): for names; identity orders always get fresh ones, since their proofs
    /// are per order.
    pub fn reuses_authorizations(&self) -> bool {
        matches!(self, Self::Names(_))
    }

    /// When finalize issues the certificate.
    pub fn issuance_timing(&self) -> IssuanceTiming {
        match self {
            Self::Identity(_) => IssuanceTiming::BeforeResponse,
            Self::Names(_) => IssuanceTiming::InBackground,
        }
    }

    /// Where a refused challenge answer is reported.
    pub fn refusal_delivery(&self) -> RefusalDelivery {
        match self {
            Self::Identity(_) => RefusalDelivery::AsResponse,
            Self::Names(_) => RefusalDelivery::InChallenge,
        }
    }

    /// The identity, for an identity order.
    pub fn identity(&self) -> Option<&WireIdentity> {
        match self {
            Self::Identity(identity) => Some(identity),
            Self::Names(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_the_challenges_their_kind_can_prove() {
        let ids = [
            Identifier::new(IdentifierKind::Dns, "*.a.test"),
            Identifier::new(IdentifierKind::Dns, "b.test"),
            Identifier::new(IdentifierKind::Ip, "192.0.2.1"),
        ];
        let names = ids.iter().filter_map(Name::of).collect();
        let plans = OrderProfile::Names(names).authorizations(&ids);
        assert_eq!(
            plans[0],
            AuthzPlan {
                identifier: Identifier::new(IdentifierKind::Dns, "a.test"),
                wildcard: true,
                challenges: vec![ChallengeKind::Dns01],
            }
        );
        assert_eq!(plans[1].challenges.len(), 3);
        assert_eq!(
            plans[2].challenges,
            [ChallengeKind::Http01, ChallengeKind::TlsAlpn01]
        );
    }
}
