//! What the configuration makes of an order's [`OrderProfile`]: the certificate profile a new
//! order names, the `target` of its Wire challenges, and its certificate's validity and key
//! usages. With the profile's own answers (`crate::model::OrderProfile`) and the decision in
//! newOrder, this is every place the registration authority tells identity and name orders
//! apart.

use super::RegistrationAuthority;
use crate::config::{DEVICE_ID_PLACEHOLDER, IDENTITY_PROFILE};
use crate::error::{Error, ProblemType, Result};
use crate::model::{ChallengeKind, OrderProfile, OrderRecord};

/// What the configuration makes of a certificate: its validity and key usages.
#[derive(Debug, Clone, Copy)]
pub(super) struct Terms {
    /// Validity, in seconds from issuance.
    pub validity: i64,
    /// EKU serverAuth.
    pub server_auth: bool,
    /// EKU clientAuth.
    pub client_auth: bool,
}

impl RegistrationAuthority {
    /// The `target` of a new challenge of `kind`: the backend's access-token URL for the
    /// order's device (`wire-dpop-01`), the identity provider (`wire-oidc-01`); none for the
    /// standard challenges.
    pub(super) fn challenge_target(
        &self,
        kind: &ChallengeKind,
        profile: &OrderProfile,
    ) -> Option<String> {
        match (kind, profile) {
            (ChallengeKind::WireDpop01, OrderProfile::Identity(identity)) => Some(
                self.config
                    .wire_dpop
                    .target
                    .replace(DEVICE_ID_PLACEHOLDER, identity.client_id().device()),
            ),
            (ChallengeKind::WireOidc01, _) => Some(self.config.wire_oidc.issuer.clone()),
            _ => None,
        }
    }

    /// The certificate profile of a new order: `wire-identity` for identity orders, a configured
    /// one (or the default) for standard orders; anything else is `invalidProfile`.
    pub(super) fn certificate_profile_for(
        &self,
        profile: &OrderProfile,
        asked: Option<&str>,
    ) -> Result<String> {
        let invalid = |detail: String| Error::problem(ProblemType::InvalidProfile, detail);
        match (profile, asked) {
            (OrderProfile::Identity(_), None | Some(IDENTITY_PROFILE)) => {
                Ok(IDENTITY_PROFILE.to_owned())
            }
            (OrderProfile::Identity(_), Some(other)) => Err(invalid(format!(
                "identity orders use the {IDENTITY_PROFILE} profile, not {other:?}"
            ))),
            (OrderProfile::Names(_), None) => Ok(self.config.default_profile.clone()),
            (OrderProfile::Names(_), Some(name)) if self.config.profiles.contains_key(name) => {
                Ok(name.to_owned())
            }
            (OrderProfile::Names(_), Some(name)) => {
                Err(invalid(format!("no profile {name:?} for dns/ip orders")))
            }
        }
    }

    /// The terms of `order`'s certificate: the identity profile's validity (its key usages are
    /// fixed by the identity CA: clientAuth), or the validity and key usages of the named
    /// profile the order was created with.
    pub(super) fn terms(&self, order: &OrderRecord) -> Result<Terms> {
        match order.profile {
            OrderProfile::Identity(_) => Ok(Terms {
                validity: self.config.certificate.validity,
                server_auth: false,
                client_auth: true,
            }),
            OrderProfile::Names(_) => {
                let name = &order.certificate_profile;
                let profile = self.config.profiles.get(name).ok_or_else(|| {
                    Error::Internal(format!("the order's profile {name:?} is gone"))
                })?;
                Ok(Terms {
                    validity: profile.validity,
                    server_auth: profile.server_auth,
                    client_auth: profile.client_auth,
                })
            }
        }
    }
}
