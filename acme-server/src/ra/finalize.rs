//! Finalize (RFC 8555 §7.4): only a `ready` order; the CSR is checked against the order's
//! identity ([`crate::ca::csr`]) while the order is still `ready`, then the order moves
//! `ready → processing` by compare-and-swap (so only one finalize issues), the CA signs, and
//! the certificate and the `valid` order are stored (durable before any response shows them:
//! see [`crate::sa`]). Identity orders issue before the
//! response (Wire clients expect `valid`); standard orders answer `processing` with
//! `Retry-After` and issue in the background.

use proto::acme::OrderStatus;

use super::names;
use super::{AuthenticatedAccount, RegistrationAuthority};
use crate::ca::Hierarchy;
use crate::ca::csr;
use crate::error::{Error, ProblemType, Result, status_name};
use crate::sa::{CertificateRecord, OrderRecord};

/// An order in `processing` with the CSR it will be issued for.
#[derive(Debug)]
pub struct Issuance {
    account_id: String,
    order: OrderRecord,
    csr: crate::ca::csr::ValidatedCsr,
}

impl Issuance {
    /// The `processing` order.
    pub fn order(&self) -> &OrderRecord {
        &self.order
    }
}

impl RegistrationAuthority {
    fn name_profile(&self, name: &str) -> Result<&crate::config::NameProfile> {
        self.config
            .profiles
            .get(name)
            .ok_or_else(|| Error::Internal(format!("the order's profile {name:?} is gone")))
    }

    /// Finalizes an order with a DER CSR and issues before returning (identity orders, and the
    /// building block of [`Self::begin_finalize`] + [`Self::issue`]).
    pub fn finalize(
        &self,
        account: &AuthenticatedAccount,
        order_id: &str,
        csr_der: &[u8],
    ) -> Result<OrderRecord> {
        let issuance = self.begin_finalize(account, order_id, csr_der)?;
        self.issue(issuance)
    }

    /// Checks the CSR of a `ready` order and moves it to `processing`; the returned
    /// [`Issuance`] is the only way to [`Self::issue`].
    pub fn begin_finalize(
        &self,
        account: &AuthenticatedAccount,
        order_id: &str,
        csr_der: &[u8],
    ) -> Result<Issuance> {
        let order = self.owned_order(account, order_id)?;
        if order.value.status != OrderStatus::Ready {
            return Err(Error::problem(
                ProblemType::OrderNotReady,
                format!(
                    "the order is {}, not ready",
                    status_name(order.value.status)
                ),
            ));
        }
        let is_account_key = |thumbprint: &str| self.is_account_key(thumbprint);
        let validated = match Self::identity_of(&order.value) {
            Some(identity) => csr::validate(csr_der, identity, is_account_key)?,
            None => {
                let profile = self.name_profile(&order.value.profile)?;
                csr::validate_names(
                    csr_der,
                    &names::check_all(&order.value.identifiers)?,
                    is_account_key,
                )?
                .with_usages(profile.server_auth, profile.client_auth)
            }
        };

        let mut processing = order.value.clone();
        processing.status = OrderStatus::Processing;
        if !self.sa.replace_order(&order, &processing)? {
            return Err(Error::problem(
                ProblemType::OrderNotReady,
                "the order is being finalized by another request",
            ));
        }
        Ok(Issuance {
            account_id: account.id().to_owned(),
            order: processing,
            csr: validated,
        })
    }

    /// Signs the certificate of a `processing` order, stores it and the `valid` order (or the
    /// `invalid` one with the error).
    pub fn issue(&self, issuance: Issuance) -> Result<OrderRecord> {
        let Issuance {
            account_id,
            order: processing,
            csr: validated,
        } = issuance;
        let order_id = processing.id.clone();
        let stored = self
            .sa
            .order(&order_id)?
            .ok_or_else(|| Error::Storage("order vanished".into()))?;
        let order = &stored;

        let now = self.now();
        let backdate = self.config.certificate.backdate;
        let validity = match order.value.wire {
            Some(_) => self.config.certificate.validity,
            None => self.name_profile(&order.value.profile)?.validity,
        };
        let not_before = (now - backdate).max(order.value.not_before.unwrap_or(i64::MIN));
        let not_after = (now + validity).min(order.value.not_after.unwrap_or(i64::MAX));
        let hierarchy = validated.hierarchy();
        let signed = self
            .ca
            .get(hierarchy)
            .ok_or_else(|| Error::Config(format!("no {} CA is loaded", hierarchy.label())))
            .and_then(|ca| ca.issue(&validated, not_before, not_after));
        let issued = match signed {
            Ok(issued) => issued,
            Err(e) => {
                let mut failed = processing.clone();
                failed.status = OrderStatus::Invalid;
                failed.error = Some(e.to_problem().1);
                self.sa.replace_order(&stored, &failed)?;
                return Err(e);
            }
        };
        let certificate = CertificateRecord {
            id: proto::random::token(128),
            account_id,
            order_id: order_id.clone(),
            serial: issued.serial,
            chain_pem: issued.chain_pem,
            not_before: issued.not_before,
            not_after: issued.not_after,
            revoked: None,
            replaced_by: None,
            replacement_expires: None,
            names_ca: hierarchy == Hierarchy::Names,
        };
        self.sa.put_certificate(&certificate)?;
        let mut valid = processing;
        valid.status = OrderStatus::Valid;
        valid.certificate = Some(certificate.id.clone());
        if !self.sa.replace_order(&stored, &valid)? {
            return Err(Error::Internal("order changed while processing".into()));
        }
        self.audit.record(
            now,
            "certificate.issued",
            serde_json::json!({"account": certificate.account_id, "order": order_id,
                               "serial": certificate.serial, "not_after": certificate.not_after,
                               "identity": valid.wire.as_ref().map(|w| w.client_id().to_uri()),
                               "identifiers": valid.identifiers}),
        );
        tracing::info!(
            order = %order_id,
            serial = %certificate.serial,
            not_after = certificate.not_after,
            "certificate issued"
        );
        Ok(valid)
    }
}
