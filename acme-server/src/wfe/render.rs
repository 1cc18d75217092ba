//! Stored records as the ACME objects clients see (RFC 8555 §7.1), with their URLs.

use proto::acme::{Account, Authorization, Challenge, Order};
use proto::rfc3339;

use super::urls::Urls;
use crate::model::{AccountRecord, AuthzRecord, ChallengeRecord, OrderRecord};

/// An account object.
pub fn account(urls: &Urls, record: &AccountRecord) -> Account {
    Account {
        status: record.status,
        contact: record.contact.clone(),
        terms_of_service_agreed: record.terms_of_service_agreed,
        orders: urls.account_orders(&record.id),
    }
}

/// An order object.
pub fn order(urls: &Urls, record: &OrderRecord) -> Order {
    Order {
        status: record.status,
        expires: Some(rfc3339::format(record.expires)),
        identifiers: record.identifiers.iter().map(Into::into).collect(),
        not_before: record.not_before.map(rfc3339::format),
        not_after: record.not_after.map(rfc3339::format),
        error: record.error.clone(),
        authorizations: record
            .authorizations
            .iter()
            .map(|id| urls.authz(id))
            .collect(),
        finalize: urls.finalize(&record.id),
        certificate: record.certificate.as_deref().map(|id| urls.certificate(id)),
        replaces: record.replaces.clone(),
        profile: (!record.certificate_profile.is_empty())
            .then(|| record.certificate_profile.clone()),
    }
}

/// A challenge object.
pub fn challenge(urls: &Urls, authz_id: &str, record: &ChallengeRecord) -> Challenge {
    Challenge {
        kind: record.kind.to_string(),
        url: urls.challenge(authz_id, &record.id),
        status: record.status,
        token: record.token.clone(),
        validated: record.validated.map(rfc3339::format),
        error: record.error.clone(),
        target: record.target.clone(),
    }
}

/// An authorization object.
pub fn authz(urls: &Urls, record: &AuthzRecord) -> Authorization {
    Authorization {
        identifier: (&record.identifier).into(),
        status: record.status,
        expires: Some(rfc3339::format(record.expires)),
        challenges: record
            .challenges
            .iter()
            .map(|c| challenge(urls, &record.id, c))
            .collect(),
        wildcard: record.wildcard.then_some(true),
    }
}
