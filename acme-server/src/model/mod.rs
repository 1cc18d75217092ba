//! The ACME server's shared vocabulary, below every part of the Boulder split: identifier and
//! challenge types as enums ([`IdentifierKind`], [`ChallengeKind`]), the names of standard orders
//! ([`Name`]), what an order certifies and so how every part treats it ([`OrderProfile`]), and
//! the records the storage authority keeps ([`AccountRecord`], [`OrderRecord`],
//! [`AuthzRecord`] with its [`ChallengeRecord`]s, [`CertificateRecord`], [`EabKey`]). The web
//! front end and the registration, validation, certificate and storage authorities all build on
//! these types; nothing here uses any of them.

mod account;
mod authz;
mod certificate;
mod challenge;
mod eab;
mod identifier;
mod kinds;
mod name;
mod order;
mod profile;

pub use account::{AccountRecord, account_key};
pub use authz::{AuthzRecord, ChallengeRecord};
pub use certificate::{CertificateRecord, Revocation};
pub use challenge::ChallengeKind;
pub use eab::EabKey;
pub use identifier::{Identifier, IdentifierKind};
pub use name::Name;
pub use order::OrderRecord;
pub use profile::{AuthzPlan, IssuanceTiming, OrderProfile, RefusalDelivery};
